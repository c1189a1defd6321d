from tests.reports.tax.sample import ledger  # noqa: F401 - the fixture
