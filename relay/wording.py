"""Words people read, rendered from Jinja2 templates per language.

The package ships `templates/` (the top-level folder of the source tree, installed as
`relay.templates`). `[relay] templates_dir` may hold single files with the same relative
names; each one found there wins over the shipped one, so a library can reword one notice
without copying them all. A template is looked up in the reader's language, then its base
language (`pt` for `pt-BR`), then English.

Templates of whole emails start with a `Subject:` line, a blank line, then the body; parts
of emails (`*_footer.txt`, `*_contents.txt`, `*_mark.txt`, `*_note.txt`) are only text.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import jinja2

FALLBACK_LANGUAGE = "en"


def shipped_templates() -> Path:
    """Installed: relay/templates/ beside this file; in a source tree: the top-level folder."""
    here = Path(__file__).resolve().parent
    installed = here / "templates"
    return installed if installed.is_dir() else here.parent / "templates"


def environment(override: Path | None, *, html: bool) -> jinja2.Environment:
    folders = [str(override)] if override else []
    folders.append(str(shipped_templates()))
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(folders),
        undefined=jinja2.StrictUndefined,
        autoescape=html,  # noqa: S701 -- plain-text mail is not HTML; HTML escapes
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


class Templates:
    def __init__(self, override: Path | None = None) -> None:
        self.folders = [override, shipped_templates()] if override else [shipped_templates()]
        self.text = environment(override, html=False)
        self.html = environment(override, html=True)

    def languages(self, kind: str = "email") -> list[str]:
        found = {
            path.name
            for folder in self.folders
            if (folder / kind).is_dir()
            for path in (folder / kind).iterdir()
            if path.is_dir()
        }
        return sorted(found)

    def decision_words(self) -> dict[str, dict[str, list[str]]]:
        """`email/<lang>/decisions.toml` of every language: the words moderators may reply."""
        return self._word_lists("decisions.toml")

    def consent_words(self) -> dict[str, dict[str, list[str]]]:
        """`email/<lang>/consent.toml` of every language: what a guardian may reply to a
        consent request (`yes`, `no`)."""
        return self._word_lists("consent.toml")

    def command_words(self) -> dict[str, dict[str, list[str]]]:
        """`email/<lang>/commands.toml` of every language: the words participants may write
        to help@ or in reply to program mail (help, pause, resume, stop, export, erase)."""
        return self._word_lists("commands.toml")

    def _word_lists(self, name: str) -> dict[str, dict[str, list[str]]]:
        words: dict[str, dict[str, list[str]]] = {}
        for language in self.languages():
            for folder in reversed(self.folders):  # an override wins
                path = folder / "email" / language / name
                if path.is_file():
                    data = tomllib.loads(path.read_text("utf-8"))
                    words[language] = {k: [str(w) for w in v] for k, v in data.items()}
        return words

    def _candidates(self, kind: str, language: str, name: str) -> list[str]:
        base = language.split("-")[0]
        return [f"{kind}/{lang}/{name}" for lang in dict.fromkeys((language, base, "en"))]

    def render(self, kind: str, language: str, template: str, **values: object) -> str:
        env = self.html if template.endswith(".html") else self.text
        found = env.select_template(self._candidates(kind, language, template))
        return found.render(**values)

    def email(self, language: str, template: str, **values: object) -> tuple[str, str]:
        """Render `email/<lang>/<template>.txt` into (subject, body)."""
        rendered = self.render("email", language, f"{template}.txt", **values)
        first, _, body = rendered.partition("\n")
        if not first.startswith("Subject:"):
            raise jinja2.TemplateError(f"email template {template!r} must start with 'Subject:'")
        return first.removeprefix("Subject:").strip(), body.lstrip("\n")

    def has_html(self, language: str, name: str) -> bool:
        try:
            self.html.select_template(self._candidates("email", language, f"{name}.html"))
        except jinja2.TemplatesNotFound:
            return False
        return True
