"""Local Binance USDⓈ-M futures simulator: the exchange for the demo, the tests and the benchmarks.

Run: `python -m simulator [--port 8090 --seed 1 --symbols 650 --weight-limit 2400 ...]`;
every flag also reads a SIM_* environment variable (see .env.example or `--help`). Pure Python on
asyncio + httptools (+ uvloop); no Django imports.

Exchange endpoints (GET, answered like fapi.binance.com, weights from exchange/weights.py):
  /fapi/v1/ping, /fapi/v1/time, /fapi/v1/exchangeInfo, /fapi/v1/ticker/24hr[?symbol],
  /fapi/v1/openInterest?symbol, /fapi/v1/premiumIndex[?symbol], /fapi/v1/klines,
  /futures/data/openInterestHist (own limit: 1000 requests / 5 min / IP).
Every answer carries `x-mbx-used-weight-1m` (per socket peer IP, fixed calendar-minute window).
Over the limit: 429 {"code":-1003,...} with Retry-After (seconds to the window end); after
`ban_after_429s` more 429s in the window: 418 "IP(...) banned until <ms>" with Retry-After, the ban
doubling on each offence from `ban_base_sec`. Unknown paths: 404 HTML page; "//" in a path: 403.

Market WebSocket streams on the same port (simulator/streams.py): `ws://host:port/market/stream?
streams=!markPrice@arr@1s/!miniTicker@arr/!forceOrder@arr` (combined) and `/market/ws/<stream>`
(raw); unrouted `/ws`, `/stream` connect, ACK SUBSCRIBE and stay silent, as Binance's do.

Control API (JSON; never rate-limited, faulted or counted):
  GET  /sim/stats[?ip=&symbols=A,B]  per source IP (as Binance counts: by address): weight_used
                                     (this calendar minute), weight_last_60s, weight_max_60s (most
                                     in any sliding 60 s of the last 5 min), futures_data_used, requests, count_429,
                                     count_418, banned_until, endpoints; open_interest_times
                                     {symbol: [arrival ms, ...]} (bounded by stats_keep).
  POST /sim/reset                    clear faults, events, overrides, counters, bans, stats.
  /sim/faults  GET: current; POST: start settings + the given keys (replaces earlier ones);
               PATCH: merge the given keys; DELETE: no faults at all. Keys: latency_ms,
               latency_jitter_ms, error_rate, error_status (default: random 500/502/503/504),
               timeout_rate, truncate_rate, nonjson_rate, html_rate (shares 0..1, drawn from a
               seeded RNG), paths [prefixes], ips [addresses], remaining (N faulted answers).
  /sim/tampers GET: list; POST one hostile answer (added; the first that matches applies);
               DELETE: none. {"path": prefix, "symbol"?, "fields"? {name: value, or
               {"now_plus_ms": N} for the clock + N ms}: overrides fields of the answer (per
               item of a list), "status"?, "headers"?, "body"?: replace the answer,
               "remaining"? N answers}. E.g. wrong symbol, negative or 1e400 OI, a time a month
               ahead, markPrice 1e40, Retry-After 999999999, a far-future ban, REQUEST_WEIGHT 1.
  GET|POST /sim/settings             weight_limit, futures_data_limit, futures_data_window_sec,
                                     ban_after_429s, ban_base_sec, ban_max_sec.
  POST /sim/ratelimit                {"status": 429|418, "seconds": s, "ip": optional}: force 429s or
                                     a ban for one IP (or all IPs when ip is absent).
  GET|POST /sim/events               {"symbol", "kind": "spike"|"dump", "pct", "at"?, "duration"?}.
  GET  /sim/streams                  connections, connection_attempts, handshakes_refused,
                                     frames_sent {stream: n}, closes, settings.
  /sim/streams/faults GET|POST|PATCH|DELETE: silent [stream names or "*"], refuse (handshakes
               503), max_connection_sec (the "24 h" close), ping_interval_sec, liquidation_rate.
  POST /sim/streams/drop             drop every stream connection (no close frame).
  GET  /sim/streams/liquidations     every liquidation emitted (symbol, side, price, ...).
  GET  /sim/symbols, GET|POST /sim/symbols/<SYM>  {"status", "quoteVolume", "delisted",
                                     "deliveryDate", "openInterest"}.
"""
