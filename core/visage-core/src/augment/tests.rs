mod placeholder_tests {}
