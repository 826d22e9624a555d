"""Few-shot validation on held-out speakers during training: clean and degraded.

Each epoch is scored on the evaluation protocol's dev speakers twice: with
their test pieces as recorded, and with the same pieces in a simulated room
with noise (a fixed, seeded draw of the training simulator: RT60 0.3-0.7 s,
speech-shaped noise or babble at 5-15 dB SNR). The epoch kept is the one with
the best mean of the two all-speaker accuracies, so a model is not chosen for
clean speech alone.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..config import FeatureConfig
from .augment import AugmentConfig, degrade_crop

#: The validation's degraded condition.
VALIDATION_ROOM_NOISE = AugmentConfig(
    p_room=1.0, rt60_s=(0.3, 0.7), drr_db=(0.0, 8.0), p_noise=1.0, snr_db=(5.0, 15.0), p_mic=0.0, p_mask=0.0
)


@dataclass
class DevSet:
    """The dev speakers of the protocol, and a degraded copy of their test pieces."""

    clean: list
    degraded: list

    @classmethod
    def load(cls, root, *, feature_config: FeatureConfig, seed: int = 0) -> DevSet:
        from ..eval.protocol import prepare_protocol

        speakers = prepare_protocol(root, enroll_seconds=(15,))
        rng = np.random.default_rng([seed, 404])
        pool = [s.enroll[15.0] for s in speakers]
        degraded = []
        for k, s in enumerate(speakers):
            others = [pool[j] for j in range(len(pool)) if j != k]
            tests = [
                degrade_crop(t, sr=feature_config.sr, rng=rng, others=others, config=VALIDATION_ROOM_NOISE)
                for t in s.tests
            ]
            degraded.append(dataclasses.replace(s, tests=tests))
        return cls(speakers, degraded)

    def scores(self, extractor, *, draws: int = 20) -> dict[str, float]:
        """Clean figures (``acc_3``, ``acc_10``, ``acc_all``, ``eer``) and degraded ones (``room_*``)."""
        from ..eval.protocol import embed_protocol, quick_scores

        clean = quick_scores(embed_protocol(extractor, self.clean), draws=draws, seed=0)
        room = quick_scores(embed_protocol(extractor, self.degraded), draws=draws, seed=0)
        return {**clean, **{f"room_{k}": v for k, v in room.items()}}

    @staticmethod
    def selection_key(scores: dict) -> tuple:
        return ((scores["acc_all"] + scores["room_acc_all"]) / 2, -(scores["eer"] + scores["room_eer"]) / 2)

    @staticmethod
    def describe(scores: dict) -> str:
        return (
            f"dev clean 3/10/all {scores['acc_3']:.3f}/{scores['acc_10']:.3f}/{scores['acc_all']:.3f} "
            f"EER {scores['eer']:.4f}; room+noise {scores['room_acc_3']:.3f}/{scores['room_acc_10']:.3f}/"
            f"{scores['room_acc_all']:.3f} EER {scores['room_eer']:.4f}"
        )
