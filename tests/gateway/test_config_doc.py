"""docs/configuration.md is generated from the settings Structs; keep it current."""

from recorded import REPO

from llmtap.gateway import config
from llmtap.gateway.config_doc import render_markdown


def test_reference_is_current() -> None:
    # Regenerate with: python -m llmtap.gateway.config_doc > docs/configuration.md
    assert (REPO / "docs" / "configuration.md").read_text() == render_markdown()


def test_every_setting_is_documented_with_its_env_var() -> None:
    text = render_markdown()
    for section in config.Settings.__struct_fields__:
        cls = type(getattr(config.Settings(), section))
        for field in cls.__struct_fields__:
            row = next(line for line in text.splitlines() if line.startswith(f"| `{field}` |"))
            assert f"LLMTAP_{section.upper()}_{field.upper()}" in row
            assert not row.endswith("|  |"), f"{section}.{field} has no description"
    assert "`OTEL_EXPORTER_OTLP_ENDPOINT`" in text and "`OTEL_BSP_SCHEDULE_DELAY`" in text
