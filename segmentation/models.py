from oscar.core.loading import is_model_registered

from segmentation.abstract_models import (
    AbstractCustomerSegment,
    AbstractSegmentationRun,
    AbstractSegmentTarget,
    RunStatus,
)

__all__ = ["RunStatus"]

if not is_model_registered("segmentation", "SegmentationRun"):

    class SegmentationRun(AbstractSegmentationRun):
        class Meta(AbstractSegmentationRun.Meta):
            pass

    __all__.append("SegmentationRun")

if not is_model_registered("segmentation", "CustomerSegment"):

    class CustomerSegment(AbstractCustomerSegment):
        class Meta(AbstractCustomerSegment.Meta):
            pass

    __all__.append("CustomerSegment")

if not is_model_registered("segmentation", "SegmentTarget"):

    class SegmentTarget(AbstractSegmentTarget):
        class Meta(AbstractSegmentTarget.Meta):
            pass

    __all__.append("SegmentTarget")

# The offer condition is a proxy of offer.Condition; importing it here registers it with
# the app so its (empty) migration exists and Oscar's load_proxy finds a ready model.
from segmentation.offers import SegmentCondition  # noqa: F401

__all__.append("SegmentCondition")
