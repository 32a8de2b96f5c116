# CAM Studio as a container: the app on 0.0.0.0:7860 with the shared-app rules (no server folders
# unless --data-root, step / image limits). Build: docker build -t cam-studio .
# Run:   docker run -p 7860:7860 cam-studio            (add --auth USER:PASSWORD after the image)
FROM python:3.11-slim
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
# Gradio reads these; app.py takes its --host / --port defaults from them.
ENV GRADIO_SERVER_NAME=0.0.0.0 GRADIO_SERVER_PORT=7860 GRADIO_ANALYTICS_ENABLED=False \
    HF_HUB_OFFLINE=1
EXPOSE 7860
ENTRYPOINT ["python", "app.py"]
