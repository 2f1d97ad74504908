-- Customer satisfaction per income bracket over all staged customers (unsurveyed ones count as
-- customers, not in the satisfaction statistics).

{{ satisfaction_by(['income_bracket']) }}
