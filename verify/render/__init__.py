"""Rendering records for people: the terminal (:mod:`.terminal`), the HTML report (:mod:`.html`),
citations (:mod:`.cite`) and the theorem graph (:mod:`.graph`). Rendering reads records; it never
runs the engine."""
