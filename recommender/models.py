from oscar.core.loading import is_model_registered

from recommender.abstract_models import (
    AbstractBury,
    AbstractErasedOrder,
    AbstractEvent,
    AbstractModelVersion,
    AbstractTrainingRun,
    EventKind,
    ModelKind,
    TrainingStatus,
    VersionStatus,
)

__all__ = ["EventKind", "ModelKind", "TrainingStatus", "VersionStatus"]

if not is_model_registered("recommender", "Event"):

    class Event(AbstractEvent):
        class Meta(AbstractEvent.Meta):
            pass

    __all__.append("Event")

if not is_model_registered("recommender", "TrainingRun"):

    class TrainingRun(AbstractTrainingRun):
        class Meta(AbstractTrainingRun.Meta):
            pass

    __all__.append("TrainingRun")

if not is_model_registered("recommender", "ModelVersion"):

    class ModelVersion(AbstractModelVersion):
        class Meta(AbstractModelVersion.Meta):
            pass

    __all__.append("ModelVersion")

if not is_model_registered("recommender", "Bury"):

    class Bury(AbstractBury):
        class Meta(AbstractBury.Meta):
            pass

    __all__.append("Bury")

if not is_model_registered("recommender", "ErasedOrder"):

    class ErasedOrder(AbstractErasedOrder):
        class Meta(AbstractErasedOrder.Meta):
            pass

    __all__.append("ErasedOrder")
