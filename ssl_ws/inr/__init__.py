"""INRs: batched evaluation (:mod:`.render`) and batched fitting (:mod:`.fit`)."""

from .render import activate, image_coordinates, render, render_image

__all__ = ["activate", "image_coordinates", "render", "render_image"]
