-- 0003_catalog_version.sql (SQLite) — a counter that moves whenever the sellable catalog does.
--
-- The PostgreSQL file of the same number is the same schema in that dialect.
--
-- `usher serve` keeps the onboarding listings (products with their prices) in memory and
-- reads only this one row per page to know whether they are still current. Triggers bump it
-- on every change to products or product_prices, whoever makes it (`usher catalog apply`,
-- the admin console, or SQL typed by an operator), so no writer can forget to.
CREATE TABLE catalog_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO catalog_version (id, version) VALUES (1, 1);

CREATE TRIGGER products_catalog_insert AFTER INSERT ON products
BEGIN UPDATE catalog_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER products_catalog_update AFTER UPDATE ON products
BEGIN UPDATE catalog_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER products_catalog_delete AFTER DELETE ON products
BEGIN UPDATE catalog_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER product_prices_catalog_insert AFTER INSERT ON product_prices
BEGIN UPDATE catalog_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER product_prices_catalog_update AFTER UPDATE ON product_prices
BEGIN UPDATE catalog_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER product_prices_catalog_delete AFTER DELETE ON product_prices
BEGIN UPDATE catalog_version SET version = version + 1 WHERE id = 1; END;
