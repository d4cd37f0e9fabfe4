"""The message text: a Jinja template (notifier.template or the built-in one) over the event.

The template is the user's, so it is trusted; the values (above all the last assistant
message) come from the container and are only ever substituted, never evaluated. The body is
cut to SMS_LIMIT characters by shortening the assistant message first, so the template's own
words (project, event, exit code) survive.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import jinja2
import jinja2.sandbox

from ..errors import ClaudeDockerError
from .events import Event, clean_text

SMS_LIMIT = 1600  # Twilio's maximum Body length
ELLIPSIS = "…"

BUILTIN_TEMPLATE = (
    "claude-docker {{ project }}: {{ title }}"
    "{% if exit_code is not none %} (exit {{ exit_code }}){% endif %}"
    "{% if duration %} after {{ duration }}{% endif %}"
    "{% if last_message %}\n{{ last_message }}{% endif %}"
)

TITLES = {
    "stop": "Claude finished",
    "notification": "Claude needs your input",
    "failure": "Claude stopped with an error",
    "session_end": "session ended",
    "message": "message from Claude",
    "test": "test notification",
    "dropped": "notifications dropped",
}


@dataclass(frozen=True)
class MessageContext:
    project: str
    session: str
    event: Event
    started_at: float | None = None  # session start, for the duration
    exit_code: int | None = None

    def variables(self, last_message: str) -> dict[str, object]:
        seconds = None if self.started_at is None else max(0, int(self.event.created_at - self.started_at))
        return {
            "project": self.project,
            "session": self.session,
            "event": self.event.kind,
            "title": TITLES.get(self.event.kind, self.event.kind),
            "last_message": last_message,
            "duration": format_duration(seconds),
            "duration_seconds": seconds,
            "exit_code": self.exit_code,
            "notification_type": self.event.hook.get("notification_type"),
        }


def format_duration(seconds: int | None) -> str:
    if seconds is None:
        return ""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


@lru_cache(maxsize=16)
def compile_template(source: str | None) -> jinja2.Template:
    env = jinja2.sandbox.SandboxedEnvironment(
        undefined=jinja2.StrictUndefined, keep_trailing_newline=False, autoescape=False
    )
    try:
        return env.from_string(source if source is not None else BUILTIN_TEMPLATE)
    except jinja2.TemplateSyntaxError as error:
        raise ClaudeDockerError(
            f"notifier.template: line {error.lineno}: {error.message}",
            "fix the Jinja syntax, e.g. 'Claude {{ event }} in {{ project }}: {{ last_message }}'",
        ) from None


def render_message(template: str | None, context: MessageContext, limit: int = SMS_LIMIT) -> str:
    """Render, then shorten the assistant message until the whole text fits `limit`."""
    compiled = compile_template(template)
    full = context.event.text
    text = _render(compiled, context, full)
    if not text:  # an empty body would be refused (Twilio 21602) and retried forever
        text = _render(compile_template(None), context, "")
    if len(text) <= limit:
        return text
    without = len(_render(compiled, context, ""))
    budget = limit - without - len(ELLIPSIS)
    if budget > 0:
        text = _render(compiled, context, full[:budget].rstrip() + ELLIPSIS)
    if len(text) > limit:  # the template alone is too long
        text = text[: limit - len(ELLIPSIS)] + ELLIPSIS
    return text


def _render(compiled: jinja2.Template, context: MessageContext, last_message: str) -> str:
    try:
        # notification_type and other hook values reach the text as the agent wrote them
        return clean_text(compiled.render(**context.variables(last_message)).strip())
    except jinja2.TemplateError as error:
        raise ClaudeDockerError(
            f"notifier.template: {error}",
            "available names: project, session, event, title, last_message, duration, "
            "duration_seconds, exit_code, notification_type",
        ) from None
