-- +goose Up
-- A deterministic catalog: 10,000 products over 20 categories, computed from
-- the row number alone, so every fresh stack and every load-test run sees the
-- same ids, prices, stock and attributes.
INSERT INTO products (id, sku, name, description, category, price_cents, currency, stock, attributes, version, updated_at)
SELECT i,
       'SKU-' || lpad(i::text, 6, '0'),
       initcap(adj[1 + (i * 7) % 20]) || ' ' || noun[1 + (i / 20) % 20] || ' ' || i,
       'A ' || adj[1 + (i * 7) % 20] || ' ' || lower(noun[1 + (i / 20) % 20]) || ' from the '
           || cat[1 + i % 20] || ' range, item number ' || i || '.',
       cat[1 + i % 20],
       99 + (i * 7919) % 49900,
       'USD',
       10 + (i * 31) % 990,
       jsonb_build_object(
           'color', color[1 + (i * 13) % 8],
           'weight_g', 50 + (i * 17) % 5000,
           'rating', round(((i * 37) % 50)::numeric / 10, 1)),
       1,
       timestamptz '2025-01-01 00:00:00+00'
FROM generate_series(1, 10000) AS i,
     (SELECT ARRAY['books','electronics','garden','kitchen','toys','sports','music','movies','games','tools',
                   'beauty','health','automotive','office','pets','baby','grocery','jewelry','shoes','outdoor'] AS cat,
             ARRAY['Lamp','Chair','Kettle','Guitar','Drill','Backpack','Novel','Headphones','Blender','Puzzle',
                   'Jacket','Watch','Camera','Notebook','Helmet','Tent','Mug','Speaker','Sofa','Bicycle'] AS noun,
             ARRAY['red','blue','green','black','white','silver','orange','purple'] AS color,
             ARRAY['sturdy','compact','classic','modern','vintage','premium','budget','portable','quiet','smart',
                   'rugged','elegant','handmade','organic','wireless','foldable','deluxe','eco','mini','pro'] AS adj) AS words;

SELECT setval(pg_get_serial_sequence('products', 'id'), (SELECT max(id) FROM products));

-- +goose Down
DELETE FROM products WHERE id <= 10000;
