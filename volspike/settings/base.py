"""Settings shared by every environment. Every value comes from the environment; see .env.example."""

from decimal import Decimal

from django.core.exceptions import ImproperlyConfigured

from volspike.env import BASE_DIR, channel_layer_prefix, env, redis_url_db

# --- Django core -------------------------------------------------------------------------
SECRET_KEY = env("DJANGO_SECRET_KEY", default="")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.postgres",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "common",
    "oi",
    "liquidity",
    "streams",
    "alerts",
    "volume_alerts",
    "feed",
    "dashboard",
    "ops",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "volspike.urls"
WSGI_APPLICATION = None
ASGI_APPLICATION = "volspike.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# https://docs.djangoproject.com/en/5.2/ref/settings/#databases
DATABASES = {
    "default": env.db(
        "DATABASE_URL", default="postgres://volspike:volspike@127.0.0.1:5432/volspike"
    ),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DJANGO_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# A psycopg connection pool of at most this many connections per process (0: none, one
# connection per thread). The web process sets it (Procfile, WEB_DB_POOL_MAX_SIZE): under ASGI
# every request runs in a thread of its own, and without a pool 30 parallel requests open ~30
# connections. A request waits up to DB_POOL_TIMEOUT_SEC for a free one (then a 500).
# A pool needs CONN_MAX_AGE 0 (a connection goes back to the pool at the end of each request).
DB_POOL_MAX_SIZE = env.int("DB_POOL_MAX_SIZE", default=0)
DB_POOL_MIN_SIZE = env.int("DB_POOL_MIN_SIZE", default=1)
DB_POOL_TIMEOUT_SEC = env.float("DB_POOL_TIMEOUT_SEC", default=10.0)
if DB_POOL_MAX_SIZE > 0:
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": min(DB_POOL_MIN_SIZE, DB_POOL_MAX_SIZE),
        "max_size": DB_POOL_MAX_SIZE,
        "timeout": DB_POOL_TIMEOUT_SEC,
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").is_dir() else []
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# Largest request body the web process reads (common/http_limits.py answers 413 beyond it,
# before reading: Content-Length checked first, chunked bodies counted). A 20,000-row ingest
# batch is about 3 MB of JSON, 4.7 MB with every field at its longest; 8 MiB leaves room.
HTTP_MAX_BODY_BYTES = env.int("HTTP_MAX_BODY_BYTES", default=8 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int(
    "DJANGO_DATA_UPLOAD_MAX_MEMORY_SIZE", default=HTTP_MAX_BODY_BYTES
)

# --- Redis ---------------------------------------------------------------------------------
REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")

# --- Celery (https://docs.celeryq.dev/en/stable/userguide/configuration.html) -------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = TIME_ZONE
# Celery's persistent schedule file, without its busy wait before each run (volspike.celery).
CELERY_BEAT_SCHEDULER = "volspike.celery:BeatScheduler"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_TASK_ACKS_LATE = False
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=60)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=90)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE: dict[str, dict] = {}  # filled below, next to each job's settings

# --- Channels: the pub/sub layer has no per-channel capacity that drops messages silently ---
# Redis pub/sub ignores the db number, so two deployments on one Redis server would see each
# other's live frames if their channel names matched: every name carries this deployment's name.
# Default: the database name and the Redis db ("volspike-r0"); set it when two deployments share
# both (e.g. two hosts with databases of the same name on one Redis server and db).
DEPLOYMENT_NAME = env(
    "DEPLOYMENT_NAME",
    default=f"{DATABASES['default']['NAME']}-r{redis_url_db(REDIS_URL)}",
)
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "prefix": channel_layer_prefix(DEPLOYMENT_NAME)},
    },
}

# --- API --------------------------------------------------------------------------------------
# When true, every read needs a token too: the APIs, the schema and docs, the exchangeInfo proxy,
# the page (or a staff session: sign in at /admin/) and /metrics (or METRICS_TOKEN). /health not.
API_READS_REQUIRE_AUTH = env.bool("API_READS_REQUIRE_AUTH", default=False)
# A bearer token Prometheus sends to /metrics when reads need a token (empty: API tokens only).
METRICS_TOKEN = env("METRICS_TOKEN", default="")
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "common.authentication.ApiTokenAuthentication",
        # the page's reads when API_READS_REQUIRE_AUTH: a staff member signed in at /admin/
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "common.permissions.WritesNeedTokenReadsBySetting",
        "common.permissions.ReadOnlyTokensCannotWrite",
    ],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["common.parsers.SafeJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "common.exceptions.api_exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "VolSpike OI API",
    "DESCRIPTION": "Open interest of liquid Binance USDⓈ-M perpetuals: snapshots, liquid universe, alerts.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # the schema and the docs page are reads like any other (API_READS_REQUIRE_AUTH)
    "SERVE_PERMISSIONS": ["common.permissions.WritesNeedTokenReadsBySetting"],
    # Swagger UI and ReDoc from the project's static files (drf-spectacular-sidecar), not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # one schema component for the OI/price regimes, however many fields carry them
    "ENUM_NAME_OVERRIDES": {
        "Regime": "oi.regimes.REGIME_VALUES",
        "AlertDirection": "alerts.models.AlertDirection",
        "RuleDirection": "alerts.models.RuleDirection",
        "RuleKind": "alerts.models.RuleKind",
        "ChannelKind": "alerts.models.ChannelKind",
    },
}

# --- Open interest ----------------------------------------------------------------------------
# The largest ingest batch accepted; the hourly script sends the full universe (~650 rows).
OI_INGEST_MAX_ROWS = env.int("OI_INGEST_MAX_ROWS", default=20_000)
# A sample dated more than this ahead of the server clock (ingest) or of the exchange's own clock
# (poller) is refused: it would silence its symbol's alerts until that time came.
OI_MAX_CLOCK_AHEAD_SEC = env.float("OI_MAX_CLOCK_AHEAD_SEC", default=10.0)
OI_SAMPLES_DEFAULT_LIMIT = 100
OI_SAMPLES_MAX_LIMIT = 5_000

# --- Liquid universe (liquidity/) ---------------------------------------------------------------
LIQUIDITY_ENTER_QUOTE_VOLUME = Decimal(env("LIQUIDITY_ENTER_QUOTE_VOLUME", default="4000000"))
LIQUIDITY_EXIT_QUOTE_VOLUME = Decimal(env("LIQUIDITY_EXIT_QUOTE_VOLUME", default="2000000"))
if LIQUIDITY_ENTER_QUOTE_VOLUME < LIQUIDITY_EXIT_QUOTE_VOLUME:
    raise ImproperlyConfigured(
        f"LIQUIDITY_ENTER_QUOTE_VOLUME ({LIQUIDITY_ENTER_QUOTE_VOLUME}) must not be below "
        f"LIQUIDITY_EXIT_QUOTE_VOLUME ({LIQUIDITY_EXIT_QUOTE_VOLUME})"
    )
LIQUIDITY_REFRESH_SEC = env.int("LIQUIDITY_REFRESH_SEC", default=300)
LIQUIDITY_REFRESH_HISTORY_DAYS = env.int("LIQUIDITY_REFRESH_HISTORY_DAYS", default=14)
# Where the job reads exchangeInfo: empty = this project's own proxy, in-process (same cache as
# GET /api/binance/futures/info); a URL = that proxy over HTTP (e.g. the old binance-proxy.js).
EXCHANGE_INFO_PROXY_URL = env("EXCHANGE_INFO_PROXY_URL", default="")
EXCHANGE_INFO_CACHE_TTL_SEC = env.int("EXCHANGE_INFO_CACHE_TTL_SEC", default=60)
EXCHANGE_INFO_CORS_ALLOWED_ORIGINS = env.list("EXCHANGE_INFO_CORS_ALLOWED_ORIGINS", default=["*"])
CELERY_BEAT_SCHEDULE["liquidity-universe-refresh"] = {
    "task": "liquidity.universe_refresh",
    "schedule": float(LIQUIDITY_REFRESH_SEC),
    # A run queued behind a worker outage is dropped rather than run late, twice.
    "options": {"expires": LIQUIDITY_REFRESH_SEC * 0.9, "queue": "default"},
}

# --- Realtime poller (oi/) ------------------------------------------------------------------------
# This host's IP's poller budget (weight/min). The interval follows design §4.2 from N and the sum
# of every live poller host's budget (oi.egress), from MIN seconds up; past MAX it stretches.
OI_MAX_REQ_PER_MIN = env.int("OI_MAX_REQ_PER_MIN", default=2000)
OI_MIN_INTERVAL_SEC = env.float("OI_MIN_INTERVAL_SEC", default=5.0)
OI_MAX_INTERVAL_SEC = env.float("OI_MAX_INTERVAL_SEC", default=20.0)
# Beat dispatches every window; each window's polls are split into shards of at most this many.
OI_WINDOW_SEC = env.int("OI_WINDOW_SEC", default=2)
# Each poller host's group (BINANCE_EGRESS_ID, OI_MAX_REQ_PER_MIN) is planned for while its
# heartbeat is younger than this (refreshed 4 times as often); a dead host is planned out after it.
OI_EGRESS_HEARTBEAT_TTL_SEC = env.float(
    "OI_EGRESS_HEARTBEAT_TTL_SEC", default=max(3.0 * OI_WINDOW_SEC, 3.0)
)
OI_SHARD_MAX_POLLS = env.int("OI_SHARD_MAX_POLLS", default=60)
# Polls a poller process has in flight at once at most (waiting for the budget or an answer),
# over all the shards it runs: its poll loop sends each at its due time (oi.poller._PollLoop).
OI_SHARD_THREADS = env.int("OI_SHARD_THREADS", default=16)
# A poller process sends the polls due within one tick of this many ms together, at the tick's
# end (a poll leaves up to a tick after its due time, by the same amount every interval).
OI_SEND_TICK_MS = env.int("OI_SEND_TICK_MS", default=200)
# A poll's answer waits at most this many ms to be stored and evaluated: a poller process stores
# what all its shards got back in one batch once every poll sent has its answer, and at most
# this long after the first answer.
OI_BATCH_FLUSH_MS = env.int("OI_BATCH_FLUSH_MS", default=100)
# A poll waits at most this long for the shared budget, and is retried at most this often.
OI_POLL_MAX_BUDGET_WAIT_SEC = env.float("OI_POLL_MAX_BUDGET_WAIT_SEC", default=2.0)
OI_POLL_MAX_RETRIES = env.int("OI_POLL_MAX_RETRIES", default=1)
# A poll that gets no answer within this many seconds is skipped (it would hold a shard thread).
OI_POLL_READ_TIMEOUT_SEC = env.float("OI_POLL_READ_TIMEOUT_SEC", default=3.0)
# Ring buffers keep this much history per symbol (and expire this long after the last sample).
OI_RING_WINDOW_SEC = env.int("OI_RING_WINDOW_SEC", default=3 * 3600)
# The coarse ring (one sample per 5 min per symbol, oi.coarse) keeps this much for 4 h and 24 h
# windows: at least 24 h plus the rules' 10-minute coverage margin.
OI_COARSE_RING_WINDOW_SEC = max(env.int("OI_COARSE_RING_WINDOW_SEC", default=25 * 3600), 87_000)
# A symbol failing this many polls in a row is reported by the poller API.
OI_FAILING_AFTER = env.int("OI_FAILING_AFTER", default=3)
# Split deployment: POST batches to a remote backend's ingest instead of this database.
OI_REMOTE_INGEST_URL = env("OI_REMOTE_INGEST_URL", default="")
OI_REMOTE_INGEST_TOKEN = env("OI_REMOTE_INGEST_TOKEN", default="")
# What is done with every checked batch of samples, poller's or ingested, in this order
# (oi.pipeline: each a callable taking the batch). Postgres before the ring is a contract: a sample
# never sits in a ring (or an alert tracker) without being in Postgres or parked for it; the feed
# before the alerts, so an update frame never waits for alert evaluation.
SAMPLE_PIPELINE_SINKS = [
    "oi.sinks.postgres_store",
    "oi.sinks.ring_append",
    "feed.sinks.feed_publish",
    "alerts.sinks.alerts_evaluate_batch",
]
CELERY_TASK_ROUTES = {
    # the dispatcher names each shard's queue (oi_poll.<egress id>); this is the fallback
    "oi.poll_shard": {"queue": "oi_poll"},
    "oi.ring_backfill": {"queue": "oi_backfill"},
}
CELERY_BEAT_SCHEDULE["oi-poll-dispatch"] = {
    "task": "oi.poll_dispatch",
    "schedule": float(OI_WINDOW_SEC),
    "options": {"expires": OI_WINDOW_SEC * 0.9, "queue": "oi_poll"},
}
# Snapshots older than this many days are deleted by an hourly job (0 keeps everything).
OI_SNAPSHOT_RETENTION_DAYS = env.int("OI_SNAPSHOT_RETENTION_DAYS", default=30)
if OI_SNAPSHOT_RETENTION_DAYS > 0:
    CELERY_BEAT_SCHEDULE["oi-snapshots-prune"] = {
        "task": "oi.snapshots_prune",
        "schedule": 3600.0,
        "options": {"expires": 3000.0, "queue": "default"},
    }
CELERY_BEAT_SCHEDULE["oi-snapshots-flush-pending"] = {
    "task": "oi.snapshots_flush_pending",
    "schedule": 30.0,
    "options": {"expires": 25.0, "queue": "default"},
}

# --- Alerts (alerts/) ----------------------------------------------------------------------------
# Baseline = median of the samples aged between W_LOW and W_HIGH seconds (design §5.1).
OI_ALERT_W_LOW_SEC = env.int("OI_ALERT_W_LOW_SEC", default=1800)
OI_ALERT_W_HIGH_SEC = env.int("OI_ALERT_W_HIGH_SEC", default=3600)
OI_ALERT_MIN_BASELINE_SAMPLES = env.int("OI_ALERT_MIN_BASELINE_SAMPLES", default=3)
OI_SPIKE_THRESHOLD_PCT = env.float("OI_SPIKE_THRESHOLD_PCT", default=0.05)
OI_DUMP_THRESHOLD_PCT = env.float("OI_DUMP_THRESHOLD_PCT", default=0.05)
OI_MIN_DELTA_CONTRACTS = env.float("OI_MIN_DELTA_CONTRACTS", default=5000)
# Optional minimum |change| × mark price in USD; empty = no USD minimum.
OI_MIN_DELTA_USD = env.float("OI_MIN_DELTA_USD", default=None)
OI_ALERT_COOLDOWN_SEC = env.int("OI_ALERT_COOLDOWN_SEC", default=900)
# Caps on the rules API (400 naming the cap): every poller process keeps one tracker per symbol
# and distinct window, and runs every enabled rule on every sample.
OI_ALERT_RULES_MAX_ENABLED = env.int("OI_ALERT_RULES_MAX_ENABLED", default=50)
OI_ALERT_MAX_DISTINCT_WINDOWS = env.int("OI_ALERT_MAX_DISTINCT_WINDOWS", default=12)
# Extra browser origins allowed to open the WebSocket feed (besides DJANGO_ALLOWED_HOSTS).
WS_ALLOWED_ORIGINS = env.list("WS_ALLOWED_ORIGINS", default=[])
# Alerts sent to a new WebSocket client so it does not start blank.
OI_ALERT_WS_BACKLOG = env.int("OI_ALERT_WS_BACKLOG", default=20)
# The live feed's limits per connection (feed/consumers.py; README "WebSocket"). A client
# message over WS_MAX_MESSAGE_BYTES is refused with close code 1009 (uvicorn's --ws-max-size in
# the Procfile refuses it before it is read); more than WS_MAX_SYMBOLS_PER_MESSAGE symbols get an
# error frame; more than WS_MAX_MESSAGES_PER_SEC messages a second (beyond a burst of
# WS_MESSAGE_BURST) close the socket with 4429.
WS_MAX_MESSAGE_BYTES = env.int("WS_MAX_MESSAGE_BYTES", default=64 * 1024)
WS_MAX_SYMBOLS_PER_MESSAGE = env.int("WS_MAX_SYMBOLS_PER_MESSAGE", default=1000)
WS_MAX_MESSAGES_PER_SEC = env.float("WS_MAX_MESSAGES_PER_SEC", default=10.0)
WS_MESSAGE_BURST = env.int("WS_MESSAGE_BURST", default=30)
# A client that falls this many frames behind, or that has not taken a frame for this many
# seconds, is closed with 4408: a stalled client never holds more than this.
WS_MAX_PENDING_FRAMES = env.int("WS_MAX_PENDING_FRAMES", default=200)
WS_SEND_TIMEOUT_SEC = env.float("WS_SEND_TIMEOUT_SEC", default=30.0)
# With API_READS_REQUIRE_AUTH, an open socket's token is checked again this often (closed with
# 4401 once revoked).
WS_TOKEN_RECHECK_SEC = env.float("WS_TOKEN_RECHECK_SEC", default=30.0)
# Delivery beyond the page (optional): a webhook, and a Telegram bot.
ALERT_WEBHOOK_URL = env("ALERT_WEBHOOK_URL", default="")
# With a secret, each webhook POST is signed (alerts/webhook_signing.py: X-VolSpike-Timestamp and
# X-VolSpike-Signature, HMAC-SHA256 over "<timestamp>.<body>"); empty sends it unsigned.
ALERT_WEBHOOK_SECRET = env("ALERT_WEBHOOK_SECRET", default="")
TELEGRAM_BOT_TOKEN = env("TELEGRAM_BOT_TOKEN", default="")
TELEGRAM_CHAT_ID = env("TELEGRAM_CHAT_ID", default="")
TELEGRAM_API_URL = env("TELEGRAM_API_URL", default="https://api.telegram.org")
# A platform's answer to a delivery (Telegram, Discord, Slack, webhook) is awaited this long.
ALERT_CHANNEL_HTTP_TIMEOUT_SEC = env.float("ALERT_CHANNEL_HTTP_TIMEOUT_SEC", default=10.0)
CELERY_TASK_ROUTES["alerts.*"] = {"queue": "default"}
# Every minute: the mark price and OI 5 min, 15 min and 1 h after each alert (alerts.outcome_*),
# from the stored samples; a run expires rather than queue behind the next.
# Liquidity tiers: rules with liquidity_tiers multiply their thresholds by the band of the
# symbol's 24 h quote volume ("<lowest volume>:<multiplier>", comma-separated); an override wins.
OI_LIQUIDITY_TIERS = env("OI_LIQUIDITY_TIERS", default="1000000000:0.5,100000000:1,0:1.5")
# Relative rules: each symbol's distribution of a window's change over this many days of stored
# samples, refreshed by a beat job every OI_CHANGE_STATS_REFRESH_SEC (on the oi_backfill queue).
OI_CHANGE_STATS_DAYS = env.int("OI_CHANGE_STATS_DAYS", default=7)
OI_CHANGE_STATS_REFRESH_SEC = env.int("OI_CHANGE_STATS_REFRESH_SEC", default=3600)
# A symbol without statistics is bootstrapped from this many pages of openInterestHist 5m (500
# entries, ~41.7 h each); at most this many such requests a run (its own limit: 1000 / 5 min).
OI_CHANGE_STATS_BOOTSTRAP_PAGES = env.int("OI_CHANGE_STATS_BOOTSTRAP_PAGES", default=2)
OI_CHANGE_STATS_BOOTSTRAP_MAX_REQUESTS = env.int(
    "OI_CHANGE_STATS_BOOTSTRAP_MAX_REQUESTS", default=300
)
CELERY_TASK_ROUTES["alerts.change_stats_refresh"] = {"queue": "oi_backfill"}
CELERY_BEAT_SCHEDULE["alerts-change-stats-refresh"] = {
    "task": "alerts.change_stats_refresh",
    "schedule": float(OI_CHANGE_STATS_REFRESH_SEC),
    "options": {"expires": OI_CHANGE_STATS_REFRESH_SEC * 0.9, "queue": "oi_backfill"},
}
CELERY_BEAT_SCHEDULE["alerts-outcomes-fill"] = {
    "task": "alerts.outcomes_fill",
    "schedule": 60.0,
    "options": {"expires": 54.0, "queue": "default"},
}
# Backtests (POST /api/alert-rules/backtest): their own queue, so a long one never delays
# deliveries; one stops after BACKTEST_TIME_LIMIT_SEC. Up to BACKTEST_INLINE_MAX_SAMPLES
# (symbols x period / OI_WINDOW_SEC) it is answered inline instead. Results kept in Redis.
CELERY_TASK_ROUTES["alerts.backtest_run"] = {"queue": "alerts_backtest"}
BACKTEST_TIME_LIMIT_SEC = env.int("BACKTEST_TIME_LIMIT_SEC", default=600)
BACKTEST_QUEUE_EXPIRES_SEC = env.int("BACKTEST_QUEUE_EXPIRES_SEC", default=3600)
BACKTEST_INLINE_MAX_SAMPLES = env.int("BACKTEST_INLINE_MAX_SAMPLES", default=200_000)
BACKTEST_RESULT_TTL_SEC = env.int("BACKTEST_RESULT_TTL_SEC", default=7 * 86400)
# Telegram limits per chat: messages per second, and per rolling minute (Telegram: ~1/s per chat,
# 20/min per group). More than DIGEST_AFTER alerts waiting (or more than the minute's allowance
# left) makes the next message a digest of up to DIGEST_MAX_ALERTS of them; none is dropped.
TELEGRAM_MAX_PER_SEC = env.float("TELEGRAM_MAX_PER_SEC", default=1.0)
TELEGRAM_MAX_PER_MIN = env.int("TELEGRAM_MAX_PER_MIN", default=20)
TELEGRAM_DIGEST_AFTER = env.int("TELEGRAM_DIGEST_AFTER", default=5)
TELEGRAM_DIGEST_MAX_ALERTS = env.int("TELEGRAM_DIGEST_MAX_ALERTS", default=25)
# The senders drain the delivery channels' outboxes every this many seconds (one per channel).
TELEGRAM_SEND_EVERY_SEC = env.float("TELEGRAM_SEND_EVERY_SEC", default=2.0)
CELERY_BEAT_SCHEDULE["alerts-channels-send"] = {  # channels are data: the sender always runs
    "task": "alerts.channels_send",
    "schedule": TELEGRAM_SEND_EVERY_SEC,
    "options": {"expires": TELEGRAM_SEND_EVERY_SEC * 0.9, "queue": "default"},
}

# --- Exchange (Binance USDⓈ-M futures) --------------------------------------------------------
# Owned by the exchange layer (exchange/). Local and test settings point at the simulator.
BINANCE_BASE_URL = env("BINANCE_BASE_URL", default="http://127.0.0.1:8090")
# Processes leaving from the same public IP share one request budget, named by this id; a host
# with its own egress IP gets its own id. The budget lives in REDIS_URL.
BINANCE_EGRESS_ID = env("BINANCE_EGRESS_ID", default="default")
# The exchange's REQUEST_WEIGHT per minute per IP until exchangeInfo reports the real one.
BINANCE_IP_WEIGHT_LIMIT = env.int("BINANCE_IP_WEIGHT_LIMIT", default=2400)
# Share of the exchange's limits never used (headroom for clock skew and in-flight requests).
BINANCE_BUDGET_SAFETY_MARGIN = env.float("BINANCE_BUDGET_SAFETY_MARGIN", default=0.05)
# Weight that may leave at once after a quiet spell; the rest is spread evenly.
BINANCE_BUDGET_BURST = env.int("BINANCE_BUDGET_BURST", default=20)
# Weight per minute of named consumers ("poller=2000,liquidity=150"). Consumers not listed share
# what the listed ones leave of the IP budget (at least 5% of it).
BINANCE_CONSUMER_BUDGETS = {
    name: int(rate)
    for name, rate in env.dict("BINANCE_CONSUMER_BUDGETS", default={"poller": "2000"}).items()
}
# Longest a call waits for budget (and between retries) before raising BudgetExhausted, seconds.
BINANCE_MAX_BUDGET_WAIT = env.float("BINANCE_MAX_BUDGET_WAIT", default=30.0)
# HTTP timeouts in seconds: connecting, and receiving the whole answer.
BINANCE_CONNECT_TIMEOUT = env.float("BINANCE_CONNECT_TIMEOUT", default=3.0)
BINANCE_READ_TIMEOUT = env.float("BINANCE_READ_TIMEOUT", default=10.0)
# Retries of transient failures (5xx, timeouts, garbage); exponential backoff with jitter.
BINANCE_MAX_RETRIES = env.int("BINANCE_MAX_RETRIES", default=3)
BINANCE_RETRY_BASE_DELAY = env.float("BINANCE_RETRY_BASE_DELAY", default=0.2)
BINANCE_RETRY_MAX_DELAY = env.float("BINANCE_RETRY_MAX_DELAY", default=5.0)

# --- Market streams (streams/, exchange/streams.py) ------------------------------------------------
# Binance's market WebSocket streams (mark price @1s, mini tickers, liquidations) at no request
# weight. Unset STREAMS_BASE_URL follows BINANCE_BASE_URL: the local simulator's own port when
# that is local (ws://127.0.0.1:8090), else the real wss://fstream.binance.com.
STREAMS_ENABLED = env.bool("STREAMS_ENABLED", default=True)
_local_exchange = BINANCE_BASE_URL.startswith(("http://127.", "http://localhost", "http://[::1]"))
STREAMS_BASE_URL = env(
    "STREAMS_BASE_URL",
    default=("ws://" + BINANCE_BASE_URL.removeprefix("http://"))
    if _local_exchange
    else "wss://fstream.binance.com",
)
# Every stream used here lives on /market since 2026-04-23; a wrong path connects and stays silent.
STREAMS_PATH = env("STREAMS_PATH", default="/market")
# A stream silent for its cadence (1 s) × this factor is stale; the poller then uses REST.
STREAMS_STALE_FACTOR = env.float("STREAMS_STALE_FACTOR", default=5.0)
STREAMS_RECONNECT_BASE_SEC = env.float("STREAMS_RECONNECT_BASE_SEC", default=1.0)
STREAMS_RECONNECT_MAX_SEC = env.float("STREAMS_RECONNECT_MAX_SEC", default=60.0)
# Binance closes a connection at 24 h; reconnect before it (its SDK does at 23 h).
STREAMS_MAX_CONNECTION_SEC = env.float("STREAMS_MAX_CONNECTION_SEC", default=23 * 3600.0)
# No message for this long: the connection is replaced (a dead socket, a wrong path).
STREAMS_SILENCE_RECONNECT_SEC = env.float("STREAMS_SILENCE_RECONNECT_SEC", default=30.0)
# The liquidity job uses the stream's 24 h volumes only after this long unbroken (changed-only).
STREAMS_TICKER_WARMUP_SEC = env.float("STREAMS_TICKER_WARMUP_SEC", default=60.0)
STREAMS_LIQUIDATION_FLUSH_SEC = env.float("STREAMS_LIQUIDATION_FLUSH_SEC", default=1.0)
# What happens to each stored batch of liquidations (streams.runner): the liquidation-burst rules.
STREAMS_LIQUIDATION_SINKS: list[str] = ["alerts.liquidation_evaluation.liquidation_bursts_evaluate"]
STREAMS_LIQUIDATION_RETENTION_DAYS = env.int("STREAMS_LIQUIDATION_RETENTION_DAYS", default=90)
if STREAMS_LIQUIDATION_RETENTION_DAYS > 0:
    CELERY_BEAT_SCHEDULE["streams-liquidations-prune"] = {
        "task": "streams.liquidations_prune",
        "schedule": 3600.0,
        "options": {"expires": 3000.0, "queue": "default"},
    }

# --- Logging: one line per event ------------------------------------------------------------
LOG_LEVEL = env("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"line": {"()": "common.logging.KeyValueFormatter"}},
    "filters": {
        "redact_query_token": {"()": "common.logging.RedactQueryTokenFilter"},
        "beat_chatter": {
            "()": "common.logging.SkipMessages",
            "prefixes": ["Scheduler: Sending due task"],
        },
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "line"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # uvicorn logs every WebSocket handshake with its query string (a `?token=`, if any)
        "uvicorn.error": {"filters": ["redact_query_token"]},
        "django.db.backends": {"level": "WARNING"},
        "celery": {"level": "INFO"},
        # "Task received" / "succeeded" and beat's "Sending due task": several lines a second in
        # steady state, none a person acts on. Failures and retries are still logged (WARNING+).
        "celery.worker.strategy": {"level": "WARNING"},
        "celery.app.trace": {"level": "WARNING"},
        "celery.beat": {"level": "INFO", "filters": ["beat_chatter"]},
    },
}

# --- Readiness (GET /health/ready): 503 naming the cause when the system is up but not working --
# Not ready when the stalest liquid symbol's sample is older than this many poll intervals,
READY_POLL_STALE_INTERVALS = env.float("READY_POLL_STALE_INTERVALS", default=3.0)
# when beat has sent no poll dispatch (or no poller has run one) for this many seconds,
READY_DISPATCH_MAX_SILENCE_SEC = env.float(
    "READY_DISPATCH_MAX_SILENCE_SEC", default=max(5.0 * OI_WINDOW_SEC, 10.0)
)
# when the liquid universe's last successful refresh is older than this many seconds,
READY_UNIVERSE_MAX_AGE_SEC = env.int(
    "READY_UNIVERSE_MAX_AGE_SEC", default=3 * LIQUIDITY_REFRESH_SEC
)
# and while the exchange has banned the IP (418), or any back-off has more than this many s left.
READY_MAX_BACKOFF_SEC = env.float("READY_MAX_BACKOFF_SEC", default=60.0)

# --- Ops events (ops/): operators hear when the system itself is in trouble (README "Ops events") --
# Beat runs the checks every this many seconds (one at a time: a Redis lock); a worker process
# consuming the default queue also runs them itself when none ran for 3 periods (beat or Redis down).
OPS_CHECK_EVERY_SEC = env.float("OPS_CHECK_EVERY_SEC", default=15.0)
if OPS_CHECK_EVERY_SEC <= 0:
    raise ImproperlyConfigured(f"OPS_CHECK_EVERY_SEC ({OPS_CHECK_EVERY_SEC}) must be above 0")
# A condition opens after holding for this many consecutive checks, and recovers after not
# holding for this many (a 429/418 and a dead letter open at the first check).
OPS_OPEN_AFTER_CHECKS = env.int("OPS_OPEN_AFTER_CHECKS", default=2)
OPS_CLEAR_AFTER_CHECKS = env.int("OPS_CLEAR_AFTER_CHECKS", default=2)
# An incident still open is told again every this many seconds (0: never).
OPS_REMINDER_SEC = env.float("OPS_REMINDER_SEC", default=3600.0)
# A back-off of another cause than a 429/418 (e.g. the exchange's used weight) is an incident
# once it has lasted this many seconds.
OPS_BACKOFF_MAX_SEC = env.float("OPS_BACKOFF_MAX_SEC", default=60.0)
# Dead letters: the incident recovers after this many seconds without a new one.
OPS_DEAD_LETTER_QUIET_SEC = env.float("OPS_DEAD_LETTER_QUIET_SEC", default=300.0)
# After the checks first run, this long before beat, poller, polling and universe count (a fresh
# start fills the universe in about a minute).
OPS_STARTUP_GRACE_SEC = env.float("OPS_STARTUP_GRACE_SEC", default=120.0)
# Where each event goes besides the Postgres record and the log line (ops.services): callables
# taking (*, dedup_key: str, title: str, text: str, recovered: bool), called in this order: the
# delivery channels that receive ops messages (admin: Alert channels, "receives ops").
OPS_EVENT_SINKS: list[str] = ["alerts.channels.services.ops_message_send"]
CELERY_TASK_ROUTES["ops.*"] = {"queue": "default"}
CELERY_BEAT_SCHEDULE["ops-check"] = {
    "task": "ops.check",
    "schedule": OPS_CHECK_EVERY_SEC,
    "options": {"expires": OPS_CHECK_EVERY_SEC * 0.9, "queue": "default"},
}
