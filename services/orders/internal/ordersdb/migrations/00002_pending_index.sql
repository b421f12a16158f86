-- +goose Up
-- The oldest pending order, watched every few seconds, and the operator's
-- list of stuck orders read the few pending rows, not the whole table.
CREATE INDEX orders_pending ON orders (created_at) WHERE status = 'pending';

-- +goose Down
DROP INDEX orders_pending;
