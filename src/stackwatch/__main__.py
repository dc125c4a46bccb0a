from stackwatch.cli.main import app

if __name__ == "__main__":  # a spawned store or writer process imports this module again: run nothing then
    app(prog_name="stackwatch")
