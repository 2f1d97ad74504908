-- Customer satisfaction per age group over all staged customers (unsurveyed ones count as
-- customers, not in the satisfaction statistics).

{{ satisfaction_by(['age_group']) }}
