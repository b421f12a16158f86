-- +goose Up
-- One logical shard's schema; every shard database has the same one.
CREATE TABLE orders (
    id          uuid PRIMARY KEY,             -- the API id is "<shard>-<id>"
    customer_id text        NOT NULL,
    status      text        NOT NULL CHECK (status IN ('pending', 'confirmed', 'rejected')),
    reason      text        NOT NULL DEFAULT '' CHECK (reason IN ('', 'out_of_stock', 'payment_declined')),
    total_cents bigint      NOT NULL,
    currency    text        NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX orders_by_customer ON orders (customer_id, created_at DESC, id DESC);
CREATE INDEX orders_by_time ON orders (created_at DESC, id DESC);

CREATE TABLE order_items (
    order_id    uuid   NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    line        int    NOT NULL,
    product_id  bigint NOT NULL,
    quantity    int    NOT NULL CHECK (quantity BETWEEN 1 AND 1000),
    price_cents bigint NOT NULL,
    PRIMARY KEY (order_id, line)
);

-- Idempotency-Key per customer; kept at least 24 h (the relay prunes older).
CREATE TABLE idempotency_keys (
    customer_id  text        NOT NULL,
    key          text        NOT NULL,
    request_hash text        NOT NULL,
    order_id     uuid        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (customer_id, key)
);
CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at);

-- Transactional outbox: written with the change it announces, published by
-- the shard's one relay, then marked.
CREATE TABLE outbox (
    seq          bigserial PRIMARY KEY,
    topic        text        NOT NULL,
    key          text        NOT NULL,
    payload      bytea       NOT NULL,
    headers      jsonb       NOT NULL DEFAULT '{}',  -- W3C trace context of the writer
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;
CREATE INDEX outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;

-- +goose Down
DROP TABLE outbox;
DROP TABLE idempotency_keys;
DROP TABLE order_items;
DROP TABLE orders;
