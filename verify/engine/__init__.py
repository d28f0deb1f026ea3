"""The engine: compiled evaluation and the 50-digit judge (:mod:`.evaluate`), the search
(:mod:`.search`), shrinking (:mod:`.shrink`), failure rates (:mod:`.rates`) and running a theorem
through its faces (:mod:`.runner`). Nothing here knows any particular theorem."""
