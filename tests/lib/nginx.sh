# tests/lib/nginx.sh — a private nginx serving one directory on a random 127.0.0.1 port, as a plain web server /
# CDN would (no cairn code involved). Source it, then:
#   nginx_start DIR WORKDIR   sets NGINX_PID, NGINX_PORT and NGINX_URL; the access log (status and Range header
#                             of each request) is WORKDIR/nginx/access.log; returns 77 if nginx is not installed
#   nginx_stop
nginx_start() {
        local root=$1 w=$2/nginx bin
        bin=$(command -v nginx || ls /usr/sbin/nginx 2>/dev/null || true)
        [ -n "$bin" ] || { echo "skip: nginx not installed"; return 77; }
        NGINX_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
        mkdir -p "$w/tmp"
        cat >"$w/nginx.conf" <<EOC
daemon off;
master_process off;
pid $w/nginx.pid;
error_log $w/error.log warn;
events { worker_connections 128; }
http {
        log_format ranges '\$request_method \$uri \$status \$body_bytes_sent "\$http_range"';
        access_log $w/access.log ranges;
        client_body_temp_path $w/tmp/body;
        proxy_temp_path $w/tmp/proxy;
        fastcgi_temp_path $w/tmp/fastcgi;
        uwsgi_temp_path $w/tmp/uwsgi;
        scgi_temp_path $w/tmp/scgi;
        default_type application/octet-stream;
        server {
                listen 127.0.0.1:$NGINX_PORT;
                root $root;
        }
}
EOC
        "$bin" -e "$w/error.log" -p "$w" -c "$w/nginx.conf" &
        NGINX_PID=$!
        NGINX_URL=http://127.0.0.1:$NGINX_PORT
        for _ in $(seq 100); do
                curl -s -o /dev/null "$NGINX_URL/" && return 0
                kill -0 "$NGINX_PID" 2>/dev/null || break
                sleep 0.05
        done
        echo "nginx did not start: $(tail -n 3 "$w/error.log" 2>/dev/null)"
        return 1
}
nginx_stop() {
        [ -n "${NGINX_PID:-}" ] && kill "$NGINX_PID" 2>/dev/null && wait "$NGINX_PID" 2>/dev/null
        NGINX_PID=
}
