"""`[panel]`: judge labels (two or more, each once, every one a judge of the config) and how their
ratings are pooled; anything else is one line naming the file, the key and the value, exit 2,
before anything is created or sent."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.config import load_config, read_config_toml
from engine.config_panel import PanelConfig, panel_from_table
from engine.errors import ConfigError
from tests.support.runconfig import mtbench, toml_value, write_config

JUDGE = {"name": "a", "base_url": "http://judge.invalid/v1", "model": "gpt-4"}


def _config(tmp_path: Path, panel: dict[str, object]) -> Path:
    config = write_config(tmp_path, models=[{"name": "m", "base_url": "http://m.invalid/v1"}],
                          judge=JUDGE, questions=[81])  # fmt: skip
    lines = [f"{key} = {toml_value(value)}" for key, value in panel.items()]
    config.write_text(config.read_text() + "\n[panel]\n" + "\n".join(lines) + "\n")
    return config


def test_a_panel_of_the_configs_judges_is_read_with_mean_and_panel_by_default() -> None:
    known = ["a", "b", "c"]
    panel = panel_from_table("run.toml", {"judges": ["c", "a"]}, known)
    assert panel == PanelConfig(("c", "a"), "mean", "panel")
    table = {"judges": known, "aggregate": "median", "name": "jury"}
    assert panel_from_table("run.toml", table, known) == PanelConfig(
        ("a", "b", "c"), "median", "jury"
    )
    assert panel_from_table("run.toml", None, known) is None


def test_a_config_without_panel_loads_as_before(tmp_path: Path) -> None:
    config = write_config(tmp_path, judge=JUDGE)
    assert load_config(config).panel is None


@pytest.mark.parametrize(
    ("panel", "problem"),
    [
        ({"judges": ["a", "zed"]}, "= ['a', 'zed']: no judge 'zed' in this config (judges: 'a')"),
        ({"judges": ["a"]}, "key 'judges' = ['a']: a panel needs at least 2 judges"),
        ({"judges": ["a", "a"]}, "key 'judges' = ['a', 'a']: judge 'a' is named twice"),
        ({"judges": "a,b"}, "key 'judges' = 'a,b': expected a list of judge labels"),
        ({"judges": ["a", "b"], "aggregate": "x"}, "'x': expected one of mean, median"),
        ({"judges": ["a", "b"], "weights": [1, 2]}, "key 'weights' = [1, 2]: unknown key"),
        ({"aggregate": "mean"}, "key 'judges' is missing"),
    ],
)  # fmt: skip
def test_a_bad_panel_is_one_line_naming_file_key_and_value_and_nothing_is_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], panel: dict[str, object], problem: str
) -> None:
    config = _config(tmp_path, panel)
    with pytest.raises(ConfigError) as error:
        load_config(config)
    assert str(error.value).startswith(f"{config}: [panel] ")
    assert problem in str(error.value)
    code, out, err = mtbench(capsys, "run", "-c", str(config), "--quiet")
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [f"mtbench: error: {error.value}"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.toml"]


def test_a_panel_table_that_is_not_a_table_is_refused(tmp_path: Path) -> None:
    config = write_config(tmp_path, judge=JUDGE, panel="a,b")
    with pytest.raises(ConfigError, match=r"key 'panel' = 'a,b': expected a \[panel\] table"):
        load_config(config)


def test_the_readme_panel_example_is_a_valid_panel(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("\n### Panels\n", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```toml\n(.*?)```", section, re.S)
    (tmp_path / "panel.toml").write_text(block)
    table = read_config_toml(tmp_path / "panel.toml")["panel"]
    panel = panel_from_table("README.md", table, table["judges"])
    assert panel == PanelConfig(("gpt-4o", "claude", "llama"), "median", "jury")


@pytest.mark.parametrize(
    ("second", "problem"),
    [
        ({"mode": "pairwise-baseline", "baseline": "m"},
         "judge 'a' grades single, judge 'b' pairwise-baseline against 'm'"),
        ({"mode": "pairwise-all"}, "judge 'a' grades single, judge 'b' pairwise-all"),
    ],
)  # fmt: skip
def test_a_panel_of_judges_grading_in_different_modes_is_refused_before_anything_is_sent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], second: dict[str, str], problem: str
) -> None:
    # Paid for all night, such a panel could never be shown: single ratings and pairwise
    # verdicts (or verdicts against different baselines) do not pool.
    judges = [{**JUDGE, "base_url": "http://127.0.0.1:9/v1"},
              {**JUDGE, "name": "b", "base_url": "http://127.0.0.1:9/v1", **second}]  # fmt: skip
    config = write_config(tmp_path, models=[{"name": "m", "base_url": "http://127.0.0.1:9/v1"}],
                          judges=judges, questions=[81])  # fmt: skip
    config.write_text(config.read_text() + '\n[panel]\njudges = ["a", "b"]\n')
    code, out, err = mtbench(capsys, "run", "-c", str(config), "--quiet")
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [
        f"mtbench: error: {config}: [panel] key 'judges' = ['a', 'b']: {problem}; a panel pools "
        "judges that grade the same way"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.toml"]


def test_a_panel_of_pairwise_judges_against_different_baselines_is_refused(tmp_path: Path) -> None:
    judges = [{**JUDGE, "mode": "pairwise-baseline", "baseline": "m"},
              {**JUDGE, "name": "b", "mode": "pairwise-baseline", "baseline": "n"}]  # fmt: skip
    config = write_config(tmp_path, judges=judges, panel={"judges": ["a", "b"]})
    with pytest.raises(ConfigError, match="grades pairwise-baseline against 'm', judge 'b' "):
        load_config(config)
    same = [judges[0], {**judges[1], "baseline": "m"}]
    config = write_config(tmp_path, judges=same, panel={"judges": ["a", "b"]})
    assert load_config(config).panel == PanelConfig(("a", "b"))
