"""Research tools that judge cropray from outside: nothing here is imported by the product."""
