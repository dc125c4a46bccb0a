from stackwatch.cli.main import app

app(prog_name="stackwatch")
