from oscar.core.loading import is_model_registered

from recommender.abstract_models import AbstractEvent, EventKind

__all__ = ["EventKind"]

if not is_model_registered("recommender", "Event"):

    class Event(AbstractEvent):
        class Meta(AbstractEvent.Meta):
            pass

    __all__.append("Event")
