# The dashboard served by daphne. Used by docker-compose.yml; not exercised by CI here
# (the CI machine has no Docker engine: tests run natively against a real RabbitMQ).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 FLOWS_STATE_DIR=/data
WORKDIR /app
COPY requirements.txt constraints.txt ./
RUN pip install --no-cache-dir -r requirements.txt -c constraints.txt
COPY . .
RUN useradd --create-home flows && mkdir -p /data && chown flows /data
USER flows
EXPOSE 8000
# `serve` checks the broker, migrates, prints a one-time sign-in link on first start,
# then runs daphne (and, with CHANNEL_LAYER_URL=redis://..., the tap process beside it).
CMD ["python", "manage.py", "serve", "--host", "0.0.0.0", "--port", "8000"]
