# The same steps as `make run`: install from the hashed lock file, migrate, serve.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements/runtime.lock requirements/runtime.lock
RUN pip install --no-cache-dir --require-hashes -r requirements/runtime.lock
COPY pyproject.toml README.md alembic.ini ./
COPY api api
COPY models models
COPY migrations migrations
# The progress report's charts: matplotlib keeps its font cache in MPLCONFIGDIR, which must be writable by the
# service user (a system user has no home, and matplotlib would fall back to a fresh temporary directory, and a
# rebuilt cache, in every process). Built once here.
ENV MPLCONFIGDIR=/app/.matplotlib
RUN pip install --no-cache-dir --no-deps . && useradd --system calmtrack \
    && python -c "import matplotlib.font_manager" && chown -R calmtrack /app/.matplotlib
USER calmtrack
EXPOSE 8000
CMD ["sh", "-c", "calmtrack migrate && calmtrack serve --host 0.0.0.0 --port 8000"]
