-- 0003_catalog_version.sql (PostgreSQL) — a counter that moves whenever the sellable catalog
-- does.
--
-- The SQLite file of the same number is the same schema in that dialect.
--
-- `usher serve` keeps the onboarding listings (products with their prices) in memory and
-- reads only this one row per page to know whether they are still current. Triggers bump it
-- on every change to products or product_prices, whoever makes it (`usher catalog apply`,
-- the admin console, or SQL typed by an operator), so no writer can forget to. Statement
-- triggers: one bump per statement is enough, however many rows it touched.
CREATE TABLE catalog_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO catalog_version (id, version) VALUES (1, 1);

CREATE FUNCTION catalog_version_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE catalog_version SET version = version + 1 WHERE id = 1;
    RETURN NULL;
END;
$$;
CREATE TRIGGER products_catalog_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON products FOR EACH STATEMENT EXECUTE FUNCTION catalog_version_bump();
CREATE TRIGGER product_prices_catalog_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON product_prices FOR EACH STATEMENT EXECUTE FUNCTION catalog_version_bump();
