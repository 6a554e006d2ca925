from oscar.core.loading import is_model_registered

from recommender.abstract_models import (
    AbstractAttributedLine,
    AbstractBury,
    AbstractClick,
    AbstractErasedOrder,
    AbstractEvent,
    AbstractExperiment,
    AbstractExposure,
    AbstractImpression,
    AbstractIntentTarget,
    AbstractModelVersion,
    AbstractTrainingRun,
    Arm,
    EventKind,
    ModelKind,
    TrainingStatus,
    VersionStatus,
)

__all__ = ["Arm", "EventKind", "ModelKind", "TrainingStatus", "VersionStatus"]

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

if not is_model_registered("recommender", "Experiment"):

    class Experiment(AbstractExperiment):
        class Meta(AbstractExperiment.Meta):
            pass

    __all__.append("Experiment")

if not is_model_registered("recommender", "Exposure"):

    class Exposure(AbstractExposure):
        class Meta(AbstractExposure.Meta):
            pass

    __all__.append("Exposure")

if not is_model_registered("recommender", "Impression"):

    class Impression(AbstractImpression):
        class Meta(AbstractImpression.Meta):
            pass

    __all__.append("Impression")

if not is_model_registered("recommender", "Click"):

    class Click(AbstractClick):
        class Meta(AbstractClick.Meta):
            pass

    __all__.append("Click")

if not is_model_registered("recommender", "AttributedLine"):

    class AttributedLine(AbstractAttributedLine):
        class Meta(AbstractAttributedLine.Meta):
            pass

    __all__.append("AttributedLine")

if not is_model_registered("recommender", "IntentTarget"):

    class IntentTarget(AbstractIntentTarget):
        class Meta(AbstractIntentTarget.Meta):
            pass

    __all__.append("IntentTarget")

# The offer condition is a proxy of offer.Condition; importing it here registers it with the app
# so its migration exists and Oscar's load_proxy finds a ready model.
from recommender.offers import IntentCondition  # noqa: F401

__all__.append("IntentCondition")
