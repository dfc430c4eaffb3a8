"""The one config resolver (tasks.config.resolve_config): order, YAML floats, and every wrong override named."""

import pytest

from tasks.config import ConfigError, PipelineConfig, dump_yaml, parse_dotlist, resolve_config


@pytest.mark.parametrize("text, value", [("1e-7", 1e-7), ("1E5", 1e5), (".5", 0.5), ("-.5", -0.5),
                                         ("1.0e5", 1e5), ("+2e-3", 2e-3), ("3", 3.0)])
def test_float_fields_take_exponents_yaml_1_1_reads_as_text(text, value):
    cfg = resolve_config(overrides=[f"fit.ftol={text}"])
    assert cfg.fit.ftol == value and type(cfg.fit.ftol) is float


def test_float_in_a_config_file_and_in_a_saved_config(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("fit:\n  ftol: 1e-7\nsegment:\n  threshold: .35\n")
    cfg = resolve_config(None, path)
    assert cfg.fit.ftol == 1e-7 and type(cfg.fit.ftol) is float and cfg.segment.threshold == 0.35
    saved = tmp_path / "config.yaml"  # a person's config.yaml as the pipeline writes it reads back the same
    saved.write_text(dump_yaml(cfg))
    assert resolve_config(saved) == cfg


def test_str_and_int_fields_keep_their_type():
    assert resolve_config(overrides=["render.motion=1e-7"]).render.motion == "1e-7"
    with pytest.raises(ConfigError, match="ingest.max_side: expected an integer"):
        resolve_config(overrides=["ingest.max_side=1e3"])


def test_order_base_then_file_then_overrides(tmp_path):
    person = tmp_path / "config.yaml"
    person.write_text(dump_yaml(resolve_config(overrides=["segment.threshold=0.4", "body.model=anny",
                                                          "fit.ftol=1e-5"])))
    extra = tmp_path / "extra.yaml"
    extra.write_text("fit:\n  ftol: 1e-6\n  focal: 1234\n")
    cfg = resolve_config(person, extra, ["fit.focal=999", ("keypoints.crop_margin", 0.2)])
    assert cfg.segment.threshold == 0.4 and cfg.body.model == "anny"  # from the person's config
    assert cfg.fit.ftol == 1e-6 and cfg.fit.focal == 999.0  # the file over the person, --set over the file
    assert cfg.keypoints.crop_margin == 0.2
    assert resolve_config(overrides=["fit.ftol=1", "fit.ftol=2"]).fit.ftol == 2.0  # a later override wins
    assert resolve_config(cfg) is cfg and resolve_config() == PipelineConfig()
    assert resolve_config(tmp_path / "never_written" / "config.yaml") == PipelineConfig()


def test_a_path_given_as_a_value_is_not_parsed_as_yaml():
    cfg = resolve_config(overrides=[("body.smplx_models", "123"), ("avatar.checkpoint", "null")])
    assert cfg.body.smplx_models == "123" and cfg.avatar.checkpoint == "null"


@pytest.mark.parametrize("overrides, message", [
    (["fit=3", "fit.ftol=0.1"], "--set fit=3: fit is a section"),
    (["nosection.x=1"], "unknown config key 'nosection'"),
    (["fit.ftol=abc"], "--set fit.ftol=abc: fit.ftol: expected a number, got 'abc'"),
    (["fit"], "--set fit: not of the form section.key=value"),
    (["fit.nokey=1"], "unknown config key 'fit.nokey'"),
    (["fit.ftol=[1"], "--set fit.ftol=\\[1: the value"),
    (["fit..ftol=1"], "'fit..ftol' is not a key"),
    (["segment.backend=paint"], "segment.backend: 'paint' is not one of"),
    (["segment.threshold.x=1"], "segment.threshold"),
])
def test_wrong_overrides_are_config_errors_naming_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message):
        resolve_config(overrides=overrides)


def test_dotlist_with_a_key_both_section_and_value_is_a_config_error():
    with pytest.raises(ConfigError, match="fit"):
        parse_dotlist(["fit=3", "fit.ftol=0.1"])
    assert parse_dotlist(["a.b=1", "a.c=x"]) == {"a": {"b": 1, "c": "x"}}


def test_bad_files_are_config_errors_naming_the_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_config(None, tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("fit: [1\n")
    with pytest.raises(ConfigError, match="bad.yaml is not valid YAML"):
        resolve_config(None, bad)
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="bad.yaml: expected a mapping"):
        resolve_config(bad)
    bad.write_text("segment:\n  treshold: 0.3\n")
    with pytest.raises(ConfigError, match="bad.yaml: unknown config key 'segment.treshold'"):
        resolve_config(bad)
