# The image of the functions that open the search engine's tables: index, api, search_maintain
# (each names its handler as the command). LanceDB and pyarrow are past a zip function's 250 MB.
# The CDK app builds it from the repository root with the build arguments of infra/bundling.py
# (SEARCH_IMAGE): the same pins as the layers of the other functions.
FROM public.ecr.aws/lambda/python:3.14

ARG PACKAGES
ARG ALONE
ARG FONT_WHEEL
ARG FONT_MEMBER
ENV PIP_NO_CACHE_DIR=1
RUN pip install $PACKAGES && pip install --no-deps $ALONE
# report.pdf's font where reelscope.packaged looks for it, out of its wheel (not installed).
RUN pip download --no-deps -d /tmp/font "$FONT_WHEEL" \
 && python -c "import sys, zipfile, glob; open('/opt/DejaVuSans.ttf', 'wb').write(zipfile.ZipFile(glob.glob('/tmp/font/*.whl')[0]).read(sys.argv[1]))" "$FONT_MEMBER" \
 && mkdir -p /opt/fonts && mv /opt/DejaVuSans.ttf /opt/fonts/ && rm -rf /tmp/font

COPY src/reelscope ${LAMBDA_TASK_ROOT}/reelscope
COPY functions ${LAMBDA_TASK_ROOT}/functions
