"""The ``RECOMMENDER`` settings dict: every key declared once, in :data:`SETTINGS`.

Read values as attributes of :data:`app_settings` (``app_settings.TRACKING_ENABLED``);
the object re-reads ``settings.RECOMMENDER`` whenever tests override it. The declarations
give the system check of the keys and types (``recommender.E002``), the training run's record
of its settings (those with ``training=True``) and README.md's table
(``python scripts/settings_table.py --write``).
"""

from __future__ import annotations

from types import NoneType

from personalization_core.conf import AppSettings, Setting

__all__ = ["SETTINGS", "SETTINGS_NAME", "app_settings"]

SETTINGS_NAME = "RECOMMENDER"

SETTINGS = [
    # Capture
    Setting("TRACKING_ENABLED", bool, True, "master switch; `False` records nothing"),
    Setting("RESPECT_GPC", bool, True, "a request with `Sec-GPC: 1` (Global Privacy Control) is not tracked"),
    Setting(
        "REQUIRE_CONSENT",
        bool,
        False,
        '`True`: track only visitors whose consent cookie is `"1"` (set it from your cookie banner)',
    ),
    Setting("CONSENT_COOKIE", str, "tracking_consent", "name of that consent cookie"),
    Setting(
        "VISITOR_COOKIE",
        str,
        "oscar_visitor",
        "first-party, signed (`SECRET_KEY`) cookie with the random pseudonymous visitor id (set only once"
        " something was recorded, and renewed at every login and logout)",
    ),
    Setting("VISITOR_COOKIE_AGE", int, 365 * 24 * 3600, "its lifetime in seconds (one year)"),
    Setting(
        "VISITOR_COOKIE_SECURE",
        (bool, NoneType),
        None,
        "`None`: the cookie is `Secure` whenever the request came over HTTPS; `True`: always (never sent "
        "over plain HTTP); `False`: never (`recommender.W005` warns with `DEBUG` off)",
    ),
    Setting(
        "BOT_USER_AGENTS",
        str,
        r"bot\b|bot/|crawl|spider|slurp|facebookexternalhit|bingpreview|headlesschrome|"
        r"python-requests|python-urllib|curl/|wget/|httpclient|go-http-client|scrapy|lighthouse|pingdom",
        "requests whose user agent matches, or that send none, are not recorded",
        shown_default="a regex of common crawlers and HTTP libraries",
    ),
    Setting(
        "EVENT_RETENTION_DAYS",
        (int, NoneType),
        400,
        "events older than this are deleted by `recommender.tasks.purge_old_events`; `None` keeps them",
    ),
    Setting(
        "EVENT_ASYNC_COMMIT",
        bool,
        True,
        "on PostgreSQL, an event insert made outside any transaction commits with `synchronous_commit = "
        "off`: the page does not wait for the disk flush (about 3 ms here), and a database crash can lose"
        " the last fraction of a second of events (never an order; inserts inside a transaction, such as "
        "the checkout's, are untouched)",
    ),
    # Periodic tasks
    Setting("TASK_LOCK_TIMEOUT", int, 6 * 3600, "seconds a periodic task may hold its no-overlap lock"),
    # Training (recommender.services.training)
    Setting(
        "TRAINING_QUEUE",
        str,
        "training",
        'Celery queue the "Train now" button sends training to (give the beat entry the same `options`)',
    ),
    Setting(
        "TRAINING_TIME_BUDGET_MINUTES",
        (int, float),
        60,
        "time the recurrent networks of one run may train: what the cheap kinds left is shared equally by"
        " the next-item model's fit, the live configuration's fit when it differs, and the refit on all "
        "data; scoring and the light models come on top (each run records its real timings)",
        training=True,
    ),
    Setting(
        "NEXT_ITEM_MODEL",
        (str, NoneType),
        None,
        'registry name of the "for you" model (`recommender.ml.registry`); `None`: `blend` (recurrent '
        "networks + rules + session kNN + item kNN) when torch is installed, else `hybrid`",
        training=True,
    ),
    Setting(
        "NEXT_ITEM_PARAMS",
        dict,
        {},
        'constructor overrides for that model, e.g. `{"networks": 1}`; `component_params` is merged per component',
        training=True,
    ),
    Setting(
        "RNN_CELL",
        str,
        "lstm",
        '`"lstm"` or `"gru"`: the recurrent cell of the blend\'s networks (they use time-of-event inputs, '
        "and event types when the shop has more than one); see [LSTM or GRU](#lstm-or-gru)",
        training=True,
    ),
    Setting(
        "SESSION_GAP_MINUTES",
        (int, float, NoneType),
        None,
        "cut a person's sequence after this much inactivity; `None`: one sequence per person (best on "
        "purchase histories)",
        training=True,
    ),
    Setting(
        "MAX_HISTORY_LENGTH",
        int,
        50,
        "a history is its last N events: long sequences train as windows of N, and models score the last N",
        training=True,
    ),
    Setting(
        "HOLDOUT_DAYS",
        (int, float),
        14,
        "every candidate is measured on the N days up to its kind's last recorded activity (not up to "
        "today: a quiet shop or an imported history is judged on its most recent real days), which it did"
        " not train on",
        training=True,
    ),
    Setting(
        "MIN_HOLDOUT_CASES",
        int,
        20,
        "fewer held-out predictions than this: the kind keeps its live version; with none, the most "
        'recent 20 % of its history is held out instead, and with still too few the run says "not enough '
        'data yet" for that kind',
        training=True,
    ),
    Setting(
        "MAX_EVALUATION_CASES",
        int,
        20000,
        "held-out predictions scored per model, spread evenly over the days",
        training=True,
    ),
    Setting(
        "GATE_METRIC",
        str,
        "hr@20",
        'what "better" means: `hr@K`, `mrr@K` or `ndcg@K` (K = 10 or 20), full ranking over the catalogue',
        training=True,
    ),
    Setting(
        "GATE_SIGNIFICANCE",
        (int, float),
        0.05,
        "a candidate is rejected when a one-sided paired test on the held-out cases says it is worse than"
        " the live version's configuration at this level (see step 4 of [Learning from the "
        "shop](#learning-from-the-shop))",
        training=True,
    ),
    Setting(
        "REFIT_AFTER_EVALUATION",
        bool,
        True,
        "a promoted model is refitted on all data, the held-out days included, before it serves",
        training=True,
    ),
    Setting(
        "TRENDING_HALF_LIFE_DAYS",
        (int, float),
        7.0,
        '"trending" counts an event N days old half as much as one today',
        training=True,
    ),
    Setting(
        "EXCLUDED_ORDER_STATUSES",
        (list, tuple),
        ["Cancelled"],
        "lines of orders in these statuses are not purchases",
        training=True,
    ),
    Setting(
        "EXCLUDED_PRODUCT_CLASSES",
        (list, tuple),
        ["non-merchandise"],
        "slugs of the product classes that are not goods (postage, fees, gift wrap): never recommended,"
        " and left out of the product and category rankings of the staff pages. `import_order_history` "
        "puts its formats' fee codes (Online Retail's POST, DOT, M, BANK CHARGES, AMAZONFEE ...) in "
        "`non-merchandise`",
        training=True,
    ),
    Setting(
        "EXCLUDED_UPCS",
        (list, tuple),
        [],
        "UPCs of further products that are not goods: never recommended nor ranked, like those classes",
        training=True,
    ),
    Setting(
        "KEEP_VERSIONS",
        (int, NoneType),
        5,
        "per kind, older versions' files are deleted (their rows stay, for the history); never the live one",
    ),
    Setting(
        "MODEL_STORAGE",
        (str, NoneType),
        None,
        "a `STORAGES` alias for the model files (e.g. S3 through django-storages); `None`: `default_storage`",
    ),
    Setting("MODEL_STORAGE_PREFIX", str, "recommender/models", "folder of the model files in that storage"),
    # Purchase intent (the ``next_action`` kind)
    Setting(
        "INTENT_CELL",
        str,
        "lstm",
        '`"lstm"` or `"gru"`: the recurrent cell of the purchase-intent network; the other cell is trained '
        "beside it in every run and its figures are stored on the version",
        training=True,
    ),
    Setting(
        "INTENT_PARAMS",
        dict,
        {},
        'constructor overrides for the purchase-intent network (`NextActionModel`), e.g. `{"hidden_size": 64}`',
        training=True,
    ),
    Setting(
        "INTENT_HISTORY_LENGTH",
        int,
        20,
        "the purchase-intent network reads a person's last N actions (trained on windows of N): the "
        "page that reads a new score pays a forward pass of N steps",
        training=True,
    ),
    Setting(
        "INTENT_VISIT_GAP_MINUTES",
        (int, float),
        30,
        'a visit ends after this much inactivity: the next action after its last event is "leave"',
        training=True,
    ),
    Setting(
        "INTENT_BAND_QUANTILES",
        (list, tuple),
        [0.5, 0.9],
        'two quantiles of the intent on the held-out days cut the bands `"low"`, `"medium"` and `"high"` '
        "(by default: the top 10 % of moments are high, the bottom half low)",
        training=True,
    ),
    Setting(
        "INTENT_ACTIVE_DAYS",
        (int, float),
        7,
        "the behaviour page counts the visitors active in the last N days of the training run per band",
        training=True,
    ),
    # Serving (recommender.serving)
    Setting(
        "SERVING_ENABLED",
        bool,
        True,
        "master switch of the blocks and the API: `False` shows no recommendation anywhere (pages render "
        "as without the app)",
    ),
    Setting("BLOCK_LIMIT", int, 6, "products in a block unless the tag or the API asks for another number (1-50)"),
    Setting(
        "BLOCK_CACHE_SECONDS",
        int,
        60,
        "a visitor's block is cached this long (per visitor); any new event of that visitor makes the "
        "next page compute it afresh. Their history (what the blocks are computed from) is cached too and"
        " extended by each event as it is recorded, so the page after a view needs no query for it; the "
        "cached copy is read again from the database at least this often",
    ),
    Setting(
        "MAX_PER_CATEGORY",
        int,
        3,
        "a block spreads over categories: at most this many products of one category while its candidates"
        " allow it; when they cannot fill the block that way (a catalogue of one category), the products "
        "held back fill it in rank order, so a block is never short (`0`: no cap)",
    ),
    Setting(
        "CARD_CACHE_SECONDS",
        int,
        300,
        'rendered product cards and each product\'s "can be bought now" verdict are cached this long, per '
        "product, language and pricing strategy class; any change to a product, its stock, images, "
        "categories, curated recommendations or the bury list makes them stale at once. `0` when prices "
        "or stock differ per customer within one strategy class",
    ),
    Setting(
        "PLACEMENT_OPTIONS",
        dict,
        {},
        'per placement overrides, e.g. `{"for_you": {"limit": 8, "exclude_purchased": False}}`',
    ),
    # Measurement (recommender.measurement)
    Setting(
        "IMPRESSIONS_ENABLED",
        bool,
        True,
        "record each block shown to a tracked shopper (one insert per page), each click on a recommended "
        "product and each order line bought after such a click; `False` records none of them",
    ),
    Setting(
        "IMPRESSIONS_WRITER",
        str,
        "thread",
        '`"thread"`: a page hands what it measured to a thread of its process, which writes it (the page '
        'does not wait for the database; PostgreSQL, outside a transaction); `"request"`: the page writes '
        "it after the response is rendered",
    ),
    Setting(
        "ATTRIBUTION_WINDOW",
        (int, str),
        24,
        "an order line counts as earned by a recommendation when the same shopper clicked that product in "
        'a block this many hours before, or `"session"`: in the same browser session',
    ),
    Setting(
        "EXPERIMENT_CONTROL_SHARE",
        float,
        0.1,
        "the share of shoppers a new experiment (`start_experiment`, the report page) puts in the control "
        "arm, which sees the same blocks filled with best sellers (0.01-0.5)",
    ),
]

app_settings = AppSettings(SETTINGS_NAME, SETTINGS)
