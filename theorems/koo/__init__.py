"""H. I. Koo, lecture "Neural Network - Back-propagation": the lemmas back-propagation rests on
(:mod:`.backprop`, B1-B4). Ids: ``koo.backprop.*``."""
