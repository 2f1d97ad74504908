-- Customer satisfaction per age group x income bracket cell over all staged customers (only
-- the cells that have customers).

{{ satisfaction_by(['age_group', 'income_bracket']) }}
