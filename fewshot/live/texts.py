"""Public-domain passages for people to read aloud while they enroll (about 40 s each)."""

PASSAGES = [
    (
        "Aesop, The North Wind and the Sun (tr. G. F. Townsend, 1867)",
        "The North Wind and the Sun disputed as to which was the most powerful, and agreed that he should be "
        "declared the victor who could first strip a wayfaring man of his clothes. The North Wind first tried "
        "his power and blew with all his might, but the keener his blasts, the closer the traveller wrapped "
        "his cloak around him, until at last, resigning all hope of victory, the Wind called upon the Sun to "
        "see what he could do. The Sun suddenly shone out with all his warmth. The traveller no sooner felt "
        "his genial rays than he took off one garment after another, and at last, fairly overcome with heat, "
        "undressed and bathed in a stream that lay in his path. Persuasion is better than force.",
    ),
    (
        "Lewis Carroll, Alice's Adventures in Wonderland (1865)",
        "Alice was beginning to get very tired of sitting by her sister on the bank, and of having nothing "
        "to do: once or twice she had peeped into the book her sister was reading, but it had no pictures or "
        "conversations in it, 'and what is the use of a book,' thought Alice, 'without pictures or "
        "conversations?' So she was considering in her own mind, as well as she could, for the hot day made "
        "her feel very sleepy and stupid, whether the pleasure of making a daisy-chain would be worth the "
        "trouble of getting up and picking the daisies, when suddenly a White Rabbit with pink eyes ran close "
        "by her.",
    ),
    (
        "Aesop, The Fox and the Grapes (tr. G. F. Townsend, 1867)",
        "A famished Fox saw some clusters of ripe black grapes hanging from a trellised vine. She resorted to "
        "all her tricks to get at them, but wearied herself in vain, for she could not reach them. At last "
        "she turned away, hiding her disappointment and saying: 'The Grapes are sour, and not ripe as I "
        "thought.' A Crow, perched on a branch nearby, had watched the whole affair, and laughed to himself. "
        "It is easy to despise what you cannot get. Then the Fox trotted home across the fields, past the "
        "old mill and the little bridge, thinking of a supper of bread and cheese.",
    ),
    (
        "Jane Austen, Pride and Prejudice (1813)",
        "It is a truth universally acknowledged, that a single man in possession of a good fortune, must be "
        "in want of a wife. However little known the feelings or views of such a man may be on his first "
        "entering a neighbourhood, this truth is so well fixed in the minds of the surrounding families, that "
        "he is considered the rightful property of some one or other of their daughters. 'My dear Mr. "
        "Bennet,' said his lady to him one day, 'have you heard that Netherfield Park is let at last?' Mr. "
        "Bennet replied that he had not.",
    ),
    (
        "Herman Melville, Moby-Dick (1851)",
        "Call me Ishmael. Some years ago, never mind how long precisely, having little or no money in my "
        "purse, and nothing particular to interest me on shore, I thought I would sail about a little and see "
        "the watery part of the world. It is a way I have of driving off the spleen and regulating the "
        "circulation. Whenever I find myself growing grim about the mouth; whenever it is a damp, drizzly "
        "November in my soul, then, I account it high time to get to sea as soon as I can.",
    ),
]


def passage(i: int) -> tuple[str, str]:
    """The ``i``-th passage (cycling): ``(source, text)``."""
    return PASSAGES[i % len(PASSAGES)]
