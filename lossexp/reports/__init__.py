"""Reading runs back: ``lossexp runs`` (a table), ``lossexp compare PARENT`` (a sweep's table and
plots) and ``lossexp ui`` (the MLflow UI on the project's store). Each command module has
``build_parser()`` and ``main(argv)``; MLflow and matplotlib are imported only once the arguments
are parsed, and TensorFlow never."""
