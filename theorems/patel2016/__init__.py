"""Patel, Nguyen, Baraniuk (2015-2016), the Deep Rendering Mixture Model: one rendering layer is
one convnet layer (:mod:`.layer`, P1-P3), and deep max-sum inference is a convnet forward pass
(:mod:`.deep`, P4-P6). Ids: ``patel2016.*``."""
