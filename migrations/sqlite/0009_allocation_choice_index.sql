-- 0009_allocation_choice_index.sql (SQLite) — the instance automatic allocation picks, from an index.
--
-- Allocation (src/domain/allocation.c, take_best_seat) wants the active, auto-allocating
-- instance of a product still under its allocation cap, those under their soft cap first,
-- then the fewest seats, then the name. Without this index that was a sort of all the
-- product's instances on every allocation: instances grow with the users (a few hundred
-- seats each), and at a million users with 2,000 instances a seat took 7 times as long as
-- at a thousand (bench/cost_growth.sh). The index holds the same order, so the first entry
-- under its cap is the answer. The expression must stay word for word that of the query's
-- ORDER BY (SQLite matches index expressions by their text).
--
-- Numbered 0009: 0005–0008 are the hot indexes and the admin console.
CREATE INDEX instances_choice_idx ON instances
    (product_id, (CASE WHEN allocated_seats < soft_cap THEN 0 ELSE 1 END), allocated_seats, name)
    WHERE is_active AND auto_allocate;
