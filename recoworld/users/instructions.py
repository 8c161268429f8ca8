"""Text of reflective instructions, rendered from their structured form (type, target topic)."""

from __future__ import annotations

from recoworld.users.base import INSTRUCTION_AVOID, INSTRUCTION_NEW, INSTRUCTION_RELATED

_TEMPLATES = {
    INSTRUCTION_AVOID: "There are too many {topic} videos; please show me something else.",
    INSTRUCTION_RELATED: (
        "I'm getting tired of the same {topic} videos; I want something different but related."
    ),
    INSTRUCTION_NEW: "Everything looks the same to me; show me something new I haven't seen before.",
}


def render_instruction(kind: int, topic_name: str) -> str:
    """The user's sentence for an instruction of ``kind`` about ``topic_name`` ("" for no instruction)."""
    template = _TEMPLATES.get(int(kind))
    return template.format(topic=topic_name) if template else ""
