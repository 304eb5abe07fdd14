"""Orders from documents that do not say what each value is: CSV, XLSX, PDF, e-mail bodies."""
