"""Year-end tax exports (``export tax``) and interop files (Koinly, CoinTracker, Awaken, beancount, hledger).

Every exporter is a projection of the engine's rows (``ledger.books``) or of the journal's entries; see
``docs/tax-exports.md``. Modules: ``run`` (the folder and README), ``us``, ``uk``, ``de``, ``generic``,
``pdf`` (the Form 8949 statement), ``interop`` (Koinly, CoinTracker, Awaken), ``beancount`` (beancount v3
and hledger), ``common`` (cells, rounding, CSV/XLSX).
"""
