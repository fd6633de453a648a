"""Analysis experiments: each turns a lecture claim into a table and a figure."""
