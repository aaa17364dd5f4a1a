# The production image: web (gunicorn), Celery worker and beat all run from it.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=platform_site.settings.production \
    CARREL_VAR_DIR=/var/lib/carrel

WORKDIR /app
# The runtime requirements only: no moto (requirements-sandbox.txt) and no test tools (requirements-dev.txt).
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

COPY . .
RUN useradd --system --home /app carrel && mkdir -p /var/lib/carrel && chown carrel /var/lib/carrel \
 && DJANGO_SECRET_KEY=build-only-collectstatic-key-that-is-long-enough-to-pass-the-check-0123456789 \
    DJANGO_ALLOWED_HOSTS=build CARREL_PUBLIC_URL=https://build.invalid python manage.py collectstatic --noinput
USER carrel

EXPOSE 8000
# No gunicorn access log (it would print secrets in URLs); Carrel's own, redacted, is on by default here.
CMD ["gunicorn", "platform_site.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "2"]
