"""What is decided for a group: its SVM, the unknown decision, verification and the enrollment self-check.

- :mod:`.svc`: :class:`~.svc.GroupSVC`, the RBF SVM fitted with scikit-learn;
- :mod:`.fitted`: a fitted SVM as plain arrays, predicting in NumPy;
- :mod:`.kept_fit`: the fit the store keeps, used only when it is the fit of the group's current rows;
- :mod:`.openset`: what "unknown" means (normalised scores, the threshold model);
- :mod:`.verify`: "is this ann?";
- :mod:`.selfcheck`: does an enrollment sound like one person throughout?
"""
