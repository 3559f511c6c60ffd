"""What a serving process carries: the libraries only a few routes need are imported on their first use, so every
process does not pay their memory (issue 13's RSS target; bench/README.md)."""

import json
import subprocess
import sys

# matplotlib and reportlab (the progress report, about 60 MB), the FHIR R4B models (about 25 MB).
ON_FIRST_USE = ("matplotlib", "reportlab", "numpy", "PIL", "fhir")


def test_the_app_starts_without_the_libraries_of_reports_and_fhir_exports():
    probe = ("import json, sys; from api.app import create_app; create_app(); "
             "print(json.dumps(sorted({name.split('.')[0] for name in sys.modules})))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                            env={"ENVIRONMENT": "development", "PATH": "/usr/bin:/bin"}).stdout
    assert set(json.loads(loaded.splitlines()[-1])) & set(ON_FIRST_USE) == set()
