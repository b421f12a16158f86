-- +goose Up
-- reserve_stock is a reservation's whole transaction in one round trip:
-- every order's stock goes through it, and as five statements (BEGIN, the
-- reservation row, the product locks, the update, COMMIT) it cost the
-- catalog and its primary five round trips an order. A single SQL
-- statement with CTEs could not keep the order in which the rows are
-- locked (the reservation row first, then the products by id, as Release
-- does too), and that order is what keeps a redelivery, a release and
-- other orders from deadlocking one another.
--
-- Outcomes: 'duplicate' (the order id has a reservation already: nothing
-- changes, the caller reads the stored one), 'out_of_stock' (recorded,
-- nothing reserved) or 'reserved' with one row per product it changed.
-- +goose StatementBegin
CREATE FUNCTION reserve_stock(p_order_id text, p_items jsonb)
RETURNS TABLE (outcome text, id bigint, sku text, name text, description text, category text,
               price_cents bigint, currency text, stock bigint, attributes jsonb, version bigint,
               updated_at timestamptz)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    enough int;
BEGIN
    -- First, so a concurrent duplicate waits here until this one commits.
    INSERT INTO reservations (order_id, status, items) VALUES (p_order_id, 'reserved', p_items)
        ON CONFLICT (order_id) DO NOTHING;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'duplicate'::text, NULL::bigint, NULL::text, NULL::text, NULL::text, NULL::text,
            NULL::bigint, NULL::text, NULL::bigint, NULL::jsonb, NULL::bigint, NULL::timestamptz;
        RETURN;
    END IF;
    -- Locked in id order, so two orders never deadlock; the stock is
    -- checked on each row's latest version, after its lock is held.
    SELECT count(*) INTO enough FROM (
        SELECT p.id FROM products p
        JOIN jsonb_to_recordset(p_items) AS w(product_id bigint, quantity bigint) ON w.product_id = p.id
        WHERE p.stock >= w.quantity
        ORDER BY p.id
        FOR UPDATE OF p) AS locked;
    IF enough < jsonb_array_length(p_items) THEN
        UPDATE reservations SET status = 'out_of_stock' WHERE order_id = p_order_id;
        RETURN QUERY SELECT 'out_of_stock'::text, NULL::bigint, NULL::text, NULL::text, NULL::text, NULL::text,
            NULL::bigint, NULL::text, NULL::bigint, NULL::jsonb, NULL::bigint, NULL::timestamptz;
        RETURN;
    END IF;
    RETURN QUERY
        WITH changed AS (
            UPDATE products p SET stock = p.stock - w.quantity, version = p.version + 1, updated_at = now()
            FROM jsonb_to_recordset(p_items) AS w(product_id bigint, quantity bigint)
            WHERE p.id = w.product_id
            RETURNING p.id, p.sku, p.name, p.description, p.category, p.price_cents, p.currency, p.stock,
                p.attributes, p.version, p.updated_at)
        SELECT 'reserved'::text, c.* FROM changed c;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION reserve_stock(text, jsonb);
