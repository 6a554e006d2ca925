from recommender.services import gate


class PromotionGate(gate.PromotionGate):
    """A shop's own policy: nothing goes live on fewer than a million held-out cases."""

    def decide(self, evaluation):
        if evaluation.metrics["n_cases"] < 1_000_000:
            return gate.Decision(False, "the shop's own gate: fewer than a million held-out cases")
        return super().decide(evaluation)
