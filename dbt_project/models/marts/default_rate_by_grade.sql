-- Loan default rate per grade over all staged loan applications (`unknown` when unparseable).

{{ default_rate_by('grade', "coalesce(grade, 'unknown')") }}
