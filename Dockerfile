# One image for the three Dagster services in docker-compose.yml: the user-code gRPC server
# (runs the assets), the webserver (UI) and the daemon (schedules, sensors, run queue).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DAGSTER_HOME=/opt/dagster/dagster_home \
    GTM_HOME=/opt/gtm

WORKDIR /opt/gtm_assets

# The package with the dependencies pinned in pyproject.toml; a non-root user owns the homes.
COPY pyproject.toml README.md ./
COPY gtm_assets ./gtm_assets
RUN pip install . \
 && useradd --create-home --uid 1000 dagster \
 && mkdir -p "$DAGSTER_HOME/storage" "$GTM_HOME" \
 && chown -R dagster:dagster "$DAGSTER_HOME" "$GTM_HOME"

# The instance (Postgres, from DAGSTER_PG_* at run time) and the workspace (the gRPC server).
COPY --chown=dagster:dagster deploy/dagster.yaml deploy/workspace.yaml $DAGSTER_HOME/

USER dagster
WORKDIR $DAGSTER_HOME
EXPOSE 3000 4000
# docker-compose.yml gives each service its own command; this default serves the code.
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "gtm_assets.definitions", "--location-name", "gtm_assets"]
