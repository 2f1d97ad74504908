-- Loan default rate per purpose over all staged loan applications.

{{ default_rate_by('purpose') }}
