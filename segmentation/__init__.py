"""RFM segmentation, clusters, lifetime value and segment-targeted offers for django-oscar shops."""
