import json

import numpy as np
import pytest

from fewshot.config import ExtractorConfig, FeatureConfig
from fewshot.errors import CorruptModelError, IncompatibleModelError
from fewshot.model.extractor import Extractor, load_extractor
from fewshot.model.nn import build_cnn


def test_embed_any_length_unit_norm(tiny_model_dir, voice):
    ex = load_extractor(tiny_model_dir)
    E = ex.embed([voice("ann", 0.4), voice("bob", 3.0), voice("cat", 7.3)])
    assert E.shape == (3, ex.dim) and E.dtype == np.float32
    assert np.all(np.isfinite(E))
    np.testing.assert_allclose(np.linalg.norm(E, axis=1), 1.0, rtol=1e-5)


def test_save_load_round_trip(tiny_model_dir, voice, tmp_path):
    ex = load_extractor(tiny_model_dir)
    y = [voice("ann", 4.0)]
    again = Extractor.load(ex.save(tmp_path / "copy"))
    np.testing.assert_allclose(again.embed(y), ex.embed(y), atol=1e-6)
    assert again.model_id == ex.model_id
    meta = json.loads((tmp_path / "copy" / "meta.json").read_text())
    assert {"fewshot", "keras", "tensorflow"} <= set(meta["versions"])
    assert meta["feature_config"]["n_mels"] == 64


def test_corrupt_model_file_is_refused(tiny_model_dir, tmp_path):
    d = load_extractor(tiny_model_dir).save(tmp_path / "m")
    f = d / json.loads((d / "meta.json").read_text())["model_file"]
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(CorruptModelError, match="checksum"):
        Extractor.load(d)


def test_save_replaces_the_model_and_its_metadata_as_a_pair(tiny_model_dir, tmp_path, monkeypatch):
    import fewshot.model.modeldir as md
    from fewshot.config import ExtractorConfig, FeatureConfig

    old = load_extractor(tiny_model_dir).save(tmp_path / "m")
    old_id = Extractor.load(old).model_id
    ec = ExtractorConfig(channels=(4, 8), blocks=(1, 1), embedding_dim=16)
    new = Extractor(build_cnn(ec, n_mels=64), feature_config=FeatureConfig(), extractor_config=ec)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # killed after the new weights are written, before meta.json is

    monkeypatch.setattr(md, "write_meta", killed)
    with pytest.raises(KeyboardInterrupt):
        new.save(old)
    assert Extractor.load(old).model_id == old_id  # the old pair is intact
    monkeypatch.undo()
    new.save(old)
    assert Extractor.load(old).model_id == new.model_id != old_id
    assert len(list(old.glob("*.keras"))) == 1  # the replaced weights are gone


def test_incompatible_feature_config_is_refused(tiny_model_dir, tmp_path):
    ex = load_extractor(tiny_model_dir)
    ex.feature_config = FeatureConfig(n_mels=80)  # saved consistently, but the CNN reads 64 bands
    d = ex.save(tmp_path / "m")
    with pytest.raises(IncompatibleModelError, match="mel bands"):
        Extractor.load(d)
    meta = json.loads((d / "meta.json").read_text())
    meta["feature_config"]["pcen"] = True
    (d / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(IncompatibleModelError, match="pcen"):
        Extractor.load(d)


def test_missing_model_dir(tmp_path):
    with pytest.raises(IncompatibleModelError, match="not found"):
        load_extractor(tmp_path)


def test_original_architecture_flattens_into_embedding():
    ec = ExtractorConfig(arch="original", crop_frames=300)
    model = build_cnn(ec, n_mels=64)
    assert model.get_layer("embedding").output.shape[-1] == 75 * 16 * 16


def test_default_model_ships_and_separates_voices(default_extractor, voice):
    E = default_extractor.embed([voice("ann", 6.0, seed=1), voice("ann", 6.0, seed=2), voice("bob", 6.0, seed=1)])
    same, other = float(E[0] @ E[1]), float(E[0] @ E[2])
    assert same > other
    assert default_extractor.feature_config == FeatureConfig.from_dict(default_extractor.meta["feature_config"])


def test_embed_is_one_pass_per_utterance_and_chunks_long_ones(tiny_model_dir, voice):
    from fewshot.audio.features import log_mel
    from fewshot.model.extractor import l2_normalize

    ex = load_extractor(tiny_model_dir)
    y = voice("bob", 5.0)
    direct = l2_normalize(ex.model(log_mel(y, config=ex.feature_config)[None]).numpy())
    np.testing.assert_allclose(ex.embed([y]), direct, atol=1e-5)
    # batched with another utterance of the same length: the same as alone
    np.testing.assert_allclose(ex.embed([y, voice("ann", 5.0)])[:1], direct, atol=1e-5)
    # longer than max_chunk_s: the normalised mean of equal chunks
    long = voice("cat", 8.0)
    S = log_mel(long, config=ex.feature_config)
    a, b, c = np.linspace(0, len(S), 3).astype(int)
    halves = l2_normalize(np.concatenate([ex.model(S[None, a:b]).numpy(), ex.model(S[None, b:c]).numpy()]))
    np.testing.assert_allclose(
        ex.embed([long], max_chunk_s=5.0), l2_normalize(halves.mean(0, keepdims=True)), atol=1e-5
    )


def test_runtime_modules_import_no_tensorflow():
    import subprocess
    import sys

    code = (
        "import sys, fewshot.model.extractor, fewshot.identifier, fewshot.cli, fewshot.live.app; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert (proc.returncode, proc.stdout.strip()) == (0, "[]"), proc.stderr
