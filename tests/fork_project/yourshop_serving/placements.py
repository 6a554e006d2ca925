from recommender.serving import placements
from recommender.serving.placements import Placement


class Placements(placements.Placements):
    placements = (
        *placements.Placements.placements,
        Placement("new_in", "New in the shop", ("new_arrivals", "best_sellers")),
    )
