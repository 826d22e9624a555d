"""fewshot: tell who is speaking after hearing each person for 15 to 35 seconds.

>>> import fewshot                                                   # doctest: +SKIP
>>> sid = fewshot.SpeakerIdentifier()                                # doctest: +SKIP
>>> sid.enroll("home", "ann", ["ann.wav"]); sid.identify("home", "x.wav")   # doctest: +SKIP
"""

__version__ = "0.1.0"

_EXPORTS = {
    "load": "audio.decode",
    "load_speech": "audio.vad",
    "log_mel": "audio.features",
    "segment": "audio.features",
    "Extractor": "model.extractor",
    "build_cnn": "model.nn",
    "load_extractor": "model.extractor",
    "GroupSVC": "groups.svc",
    "EnrollmentStore": "store.enrollments",
    "SpeakerIdentifier": "identifier",
    "Prediction": "identifier",
    "FeatureConfig": "config",
    "ExtractorConfig": "config",
    "ClassifierConfig": "config",
    "FewshotError": "errors",
    "AudioError": "errors",
    "NotEnrolledError": "errors",
    "IncompatibleModelError": "errors",
    "CorruptModelError": "errors",
    "InvalidNameError": "errors",
    "StoreError": "errors",
    "NotAStoreError": "errors",
    "StoreBusyError": "errors",
}
__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name):
    # scikit-learn (and TensorFlow, for the Keras backend) take seconds to import: load submodules only when asked for.
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'fewshot' has no attribute {name!r}")
