-- PostgreSQL only (its audit head's check moves after the statement, for the create's single
-- statement); SQLite writes the entry and moves the head in two statements and keeps its check.
SELECT 1;
